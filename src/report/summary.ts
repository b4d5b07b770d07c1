/** The terminal table and summary.txt: layers as rows, the headline metrics as columns. */
import type { Report } from './schema.js';
import { formatTable } from './table.js';
import { fmtNumber } from './format.js';
import { findings } from './findings.js';
import { hardestPairs } from './class-pairs.js';

export { fmtNumber };
import { excludesValue } from '../metrics/bootstrap.js';
import { catalogRows } from '../metrics/catalog.js';
import { cellMarks, dimsMark, MarkLegend, NO_BETTER_MARK, SAMPLED_MARK, superscript as superscriptOf } from './marks.js';

/** The headline columns: the catalogue rows with a short title, with their legend lines. */
function columns(): [key: string, title: string, legend: string][] {
  return catalogRows()
    .filter((r) => r.short !== undefined)
    .map((r) => [r.key, r.short!, r.legend ?? `${r.short} = ${r.label}`]);
}


/** The hardest class pairs of a model across its layers, as a small table (the HTML's pair view). */
function pairsTable(m: Report['models'][number], classes: readonly string[]): string | undefined {
  const h = hardestPairs(m, classes.length, 3);
  if (h.overall.length === 0 || !h.overall.some((p) => p.mean > 0)) return undefined;
  const head = [`hardest pairs (${h.layers[0]!.source})`, ...h.layers.map((lp) => lp.layer.id), 'mean'];
  const rows = h.overall.map((p) => [`${classes[p.k]} vs ${classes[p.l]}`, ...p.scores.map((v, i) => (v === null ? '' : `${fmtNumber(v)}${h.layers[i]!.pairs[0]!.k === p.k && h.layers[i]!.pairs[0]!.l === p.l ? '▲' : ''}`)), fmtNumber(p.mean)]);
  return formatTable(head, rows, ['l', ...h.layers.map(() => 'r' as const), 'r']);
}

/** Wraps a sentence at spaces to lines of at most about `width` characters. */
function wrapWords(text: string, width = 108): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

/** Wraps `; `-joined items to lines of about `width` characters. */
function wrapItems(items: readonly string[], width = 110): string[] {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    const next = line ? `${line}; ${item}` : item;
    if (line && next.length > width) {
      lines.push(line + ';');
      line = item;
    } else line = next;
  }
  if (line) lines.push(line + '.');
  return lines;
}

export function renderSummary(report: Report): string {
  const parts: string[] = [];
  const ds = report.dataset;
  const shown = new Set<string>();
  let outside = false;
  const marks = new MarkLegend();
  const COLUMNS = columns();
  parts.push(`layerprobe ${report.similarity ? 'compare' : 'audit'} — ${ds.name} (${ds.selectedItems} items, ${ds.classes.length} classes), seed ${report.seed}`);
  for (const m of report.models) {
    const present = COLUMNS.filter(([k]) => m.layers.some((l) => l.metrics[k] !== undefined));
    for (const [k] of present) shown.add(k);
    const acc = m.accuracy?.value;
    parts.push('');
    parts.push(`${m.name}  (${m.format}, ${m.backend})${acc !== undefined && acc !== null ? `  accuracy ${(acc * 100).toFixed(2)}%` : ''}`);
    if (m.reductionRule) parts.push(`  reductions: ${m.reductionRule}${m.batchSize ? `; batch ${m.batchSize} (memory budget, --max-memory)` : ''}`);
    const rows = m.layers.map((l) => [
      l.depth.toFixed(2),
      l.id,
      l.op,
      `${l.dim} ${l.reduction.split(' ')[0]}`,
      ...present.map(([k]) => {
        const r = l.metrics[k];
        if (!r) return '';
        const mk = cellMarks(k, r, l);
        if (mk.failed !== undefined) return `failed${superscriptOf(marks.footnote(m.name, l.id, k, mk.failed))}`;
        if (mk.sampled) marks.noteSampled(m.name, mk.sampled.n, mk.sampled.N);
        if (mk.dims !== undefined) marks.reduced = true;
        if (mk.noBetter) marks.noBetter = true;
        if (mk.unreliable) marks.unreliable = true;
        const suffix = `${mk.sampled ? SAMPLED_MARK : ''}${mk.dims !== undefined ? ` ${dimsMark(mk)}` : ''}${mk.noBetter ? NO_BETTER_MARK : ''}`;
        if (!r.ci) return fmtNumber(r.value) + suffix;
        // An interval that leaves out the value is bias-corrected; the mark points to the legend.
        const out = excludesValue(r.value, r.ci);
        if (out) outside = true;
        return `${fmtNumber(r.value)}${suffix} [${fmtNumber(r.ci[0])},${fmtNumber(r.ci[1])}]${out ? '†' : ''}`;
      }),
    ]);
    parts.push(formatTable(['depth', 'layer', 'op', 'dim', ...present.map(([, t]) => t)], rows, ['r', 'l', 'l', 'r', ...present.map(() => 'r' as const)]));
    for (const f of findings(m, ds.classes)) parts.push(...wrapWords(f).map((line, i) => (i === 0 ? `• ${line}` : `  ${line}`)));
    const pairs = pairsTable(m, ds.classes);
    if (pairs) parts.push(pairs);
    const t = m.timings;
    parts.push(`time: forward ${(t.forwardMs / 1000).toFixed(2)} s, reductions ${(t.reduceMs / 1000).toFixed(2)} s, statistics ${(t.statsMs / 1000).toFixed(2)} s, metrics ${(t.metricsMs / 1000).toFixed(2)} s`);
  }
  if (report.similarity) parts.push('', trendTable(report), '', ckaBlocks(report));
  if (report.warnings.length) parts.push('', ...report.warnings.map((w) => `warning: ${w}`));
  if (report.gates?.length) {
    parts.push('');
    for (const g of report.gates) parts.push(`${g.passed ? 'PASS' : 'FAIL'}  ${g.spec}: ${g.detail}`);
  }
  const legend = COLUMNS.filter(([k]) => shown.has(k)).map(([, , text]) => text);
  if (outside) legend.push('† the interval leaves out the value: resampling shows the plug-in estimate is biased at this sample size, and the interval corrects for it (ciNote in report.json)');
  legend.push(...marks.lines(report));
  legend.push('definitions: docs/metrics/, and each metric in report.json');
  parts.push('', ...wrapItems(legend));
  const notes = marks.footnotes();
  if (notes.length) parts.push('', ...notes);
  return parts.join('\n');
}

/** Per model: how C, D, the probe and LP separability move with depth (compare). */
export function trendTable(report: Report): string {
  const rows = report.models.map((m) => [
    m.name,
    m.accuracy?.value === null || m.accuracy?.value === undefined ? 'n/a' : (m.accuracy.value * 100).toFixed(2) + '%',
    String(m.layers.length),
    fmtNumber(m.trend?.compressionRatioPerLayer),
    fmtNumber(m.trend?.discriminationSlopePerLayer),
    fmtNumber(m.trend?.probeReachesDepth),
    fmtNumber(m.trend?.separableDepth),
  ]);
  return formatTable(['model', 'accuracy', 'layers', 'C ratio/layer', 'D slope/layer', 'probe ≥95% of acc. at depth', 'LP-separable from depth'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']);
}

/** The CKA matrix as one table per model pair (compare). */
export function ckaBlocks(report: Report): string {
  const s = report.similarity;
  if (!s) return '';
  const models = [...new Set(s.layers.map((l) => l.model))];
  const out: string[] = [`${s.method === 'debiased' ? 'debiased ' : ''}linear CKA on ${s.n} samples (rows × columns = layers by depth)`];
  for (let a = 0; a < models.length; a++) {
    for (let b = a; b < models.length; b++) {
      const ia = s.layers.map((l, i) => (l.model === models[a] ? i : -1)).filter((i) => i >= 0);
      const ib = s.layers.map((l, i) => (l.model === models[b] ? i : -1)).filter((i) => i >= 0);
      out.push('', `${models[a]} × ${models[b]}`);
      out.push(
        formatTable(
          ['', ...ib.map((j) => s.layers[j]!.depth.toFixed(2))],
          ia.map((i) => [`${s.layers[i]!.layer} (${s.layers[i]!.depth.toFixed(2)})`, ...ib.map((j) => fmtNumber(s.matrix[i]![j]))]),
          ['l', ...ib.map(() => 'r' as const)],
        ),
      );
    }
  }
  return out.join('\n');
}
