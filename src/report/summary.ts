/** The terminal table and summary.txt: layers as rows, the headline metrics as columns. */
import type { Report } from './schema.js';
import { formatTable } from './table.js';

const COLUMNS: [key: string, title: string][] = [
  ['compression', 'C'],
  ['discrimination', 'D'],
  ['nc1', 'NC1'],
  ['cdnv', 'CDNV'],
  ['numerical_rank', 'rank95'],
  ['probe_heldout_accuracy', 'probe'],
  ['probe_control_heldout_accuracy', 'shuffled'],
  ['mdlsm_kappa', 'κ'],
  ['mdlsm_heldout_kappa', 'κ held'],
  ['mdlsm_null_kappa', 'κ null'],
  ['lp_separable_fraction', 'LP sep'],
  ['baseline_probe_heldout_accuracy', 'rand probe'],
  ['baseline_mdlsm_heldout_kappa', 'rand κ'],
  ['baseline_width_ratio', 'D/D*'],
];

export function fmtNumber(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(2);
  return v.toFixed(a >= 100 ? 1 : a >= 10 ? 2 : 4);
}

export function renderSummary(report: Report): string {
  const parts: string[] = [];
  const ds = report.dataset;
  parts.push(`layerprobe ${report.similarity ? 'compare' : 'audit'} — ${ds.name} (${ds.selectedItems} items, ${ds.classes.length} classes), seed ${report.seed}`);
  for (const m of report.models) {
    const present = COLUMNS.filter(([k]) => m.layers.some((l) => l.metrics[k] !== undefined));
    const acc = m.accuracy?.value;
    parts.push('');
    parts.push(`${m.name}  (${m.format}, ${m.backend})${acc !== undefined && acc !== null ? `  accuracy ${(acc * 100).toFixed(2)}%` : ''}`);
    const rows = m.layers.map((l) => [
      l.depth.toFixed(2),
      l.id,
      l.op,
      `${l.dim} ${l.reduction.split(' ')[0]}`,
      ...present.map(([k]) => {
        const r = l.metrics[k];
        if (!r) return '';
        return r.ci ? `${fmtNumber(r.value)} [${fmtNumber(r.ci[0])},${fmtNumber(r.ci[1])}]` : fmtNumber(r.value);
      }),
    ]);
    parts.push(formatTable(['depth', 'layer', 'op', 'dim', ...present.map(([, t]) => t)], rows, ['r', 'l', 'l', 'r', ...present.map(() => 'r' as const)]));
    const t = m.timings;
    parts.push(`time: forward ${(t.forwardMs / 1000).toFixed(2)} s, reductions ${(t.reduceMs / 1000).toFixed(2)} s, statistics ${(t.statsMs / 1000).toFixed(2)} s, metrics ${(t.metricsMs / 1000).toFixed(2)} s`);
  }
  if (report.warnings.length) parts.push('', ...report.warnings.map((w) => `warning: ${w}`));
  if (report.gates?.length) {
    parts.push('');
    for (const g of report.gates) parts.push(`${g.passed ? 'PASS' : 'FAIL'}  ${g.spec}: ${g.detail}`);
  }
  parts.push('', 'C = tr(Σ_W)/tr(Σ_B) (smaller: more compressed); D = 1 − max cos between class means; NC1 = tr(Σ_W Σ_B⁺)/K; rank95 = numerical rank;');
  parts.push('probe = held-out accuracy of a linear probe; shuffled = same probe on permuted labels. Definitions: SCIENCE.md, and each metric in report.json.');
  return parts.join('\n');
}
