/**
 * Flat records, one per (model, layer, metric): for `--json` streams of compare and metrics.csv.
 * The metric names are the catalogue's keys (src/metrics/catalog.ts); a sampled value carries
 * its row count and a failed one its reason.
 */
import type { Report } from './schema.js';
import { csvLine } from './csv.js';
import { cellMarks } from './marks.js';

export interface MetricRow {
  model: string;
  layer: string;
  position: number;
  depth: number;
  reduction: string;
  metric: string;
  value: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  /** Rows the value was computed on when they are a sample of the images; null: exact over all N. */
  sampledN: number | null;
  /** Why the metric failed for this layer; null when it did not. */
  failed: string | null;
}

export function metricRows(report: Report): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const m of report.models) {
    if (m.accuracy) {
      rows.push({ model: m.name, layer: '(output)', position: m.layers.length, depth: 1, reduction: '', metric: 'accuracy', value: m.accuracy.value, ciLow: null, ciHigh: null, sampledN: null, failed: null });
    }
    for (const l of m.layers) {
      for (const [name, r] of Object.entries(l.metrics)) {
        const mk = cellMarks(name, r, l);
        rows.push({ model: m.name, layer: l.id, position: l.position, depth: l.depth, reduction: l.reduction, metric: name, value: r.value, ciLow: r.ci?.[0] ?? null, ciHigh: r.ci?.[1] ?? null, sampledN: mk.sampled?.n ?? null, failed: mk.failed ?? null });
      }
    }
  }
  return rows;
}

export function metricsCsv(report: Report): string {
  const cols: (keyof MetricRow)[] = ['model', 'layer', 'position', 'depth', 'reduction', 'metric', 'value', 'ciLow', 'ciHigh', 'sampledN', 'failed'];
  const lines = [cols.join(',')];
  for (const r of metricRows(report)) lines.push(csvLine(cols.map((c) => r[c])));
  return lines.join('\n') + '\n';
}

/**
 * compare's layer similarity in long form, one row per ordered layer pair, for tools that read
 * CSV rather than report.json; an undefined CKA is an empty cell.
 */
export function similarityCsv(report: Report): string | null {
  const s = report.similarity;
  if (!s) return null;
  const lines = [['method', 'modelA', 'layerA', 'depthA', 'modelB', 'layerB', 'depthB', 'cka'].join(',')];
  s.layers.forEach((a, i) => {
    s.layers.forEach((b, j) => {
      lines.push(csvLine([s.method, a.model, a.layer, a.depth, b.model, b.layer, b.depth, s.matrix[i]![j]]));
    });
  });
  return lines.join('\n') + '\n';
}
