/**
 * The visible marks of a report cell: a value is exact over all N images at full width, or it
 * says what it is — sampled on n rows (ˢ), reduced to k dims ([10d]), or failed with a reason
 * (a numbered footnote); an excess over the random layer that is not clearly better says so (≈). Read from the record's `basis`/`failed`, falling back to the metric
 * catalogue's exact-or-sampled flag for reports written before `basis` existed. The table,
 * summary.txt and report.html all render these, with the same legend lines.
 */
import { metricRow } from '../metrics/catalog.js';
import type { LayerReport, MetricRecord, Report } from './schema.js';

export const SAMPLED_MARK = 'ˢ';
/** An excess over the random layer whose interval does not lie wholly on the better side of 0. */
export const NO_BETTER_MARK = '≈';
export const NO_BETTER_LEGEND = '≈ no better than random: the interval of the excess over the random-layer draws contains 0 or lies on the worse side (verdictText in report.json)';

export interface CellMarks {
  /** Rows the value was computed on when they are a sample of the N images. */
  sampled?: { n: number; N: number };
  /** The dimension the features were reduced to for this value. */
  dims?: number;
  note?: string;
  failed?: string;
  /** An excess (trained − random) that is not clearly better than the random layer. */
  noBetter?: boolean;
  /** Reduced below the reliability floor (κ and LP: max(10, 5% of the width) dims): shown as [kd?]. */
  unreliable?: boolean;
}

/** The reduced-dimension mark: [kd], or [kd?] below the reliability floor. */
export function dimsMark(mk: CellMarks): string {
  return mk.dims === undefined ? '' : `[${mk.dims}d${mk.unreliable ? '?' : ''}]`;
}

export const UNRELIABLE_LEGEND =
  '[kd?] reduced below the reliability floor (max(10, 5% of the width) dims): says little about the layer; raise --buffer-per-class (report.json: detail.unreliable)';

export function cellMarks(key: string, r: MetricRecord, layer: LayerReport): CellMarks {
  const out: CellMarks = {};
  if (r.failed !== undefined) return { failed: r.failed };
  const N = layer.samples.streamed;
  if (r.basis) {
    if (r.basis.sampled) out.sampled = { n: r.basis.n, N };
    if (r.basis.dims !== undefined && (r.basis.width === undefined || r.basis.dims < r.basis.width)) out.dims = r.basis.dims;
    if (r.basis.note) out.note = r.basis.note;
  } else if (metricRow(key)?.basis === 'sampled' && layer.samples.buffered < N) {
    out.sampled = { n: layer.samples.buffered, N };
  }
  if (r.detail?.noBetterThanRandom === true) out.noBetter = true;
  if (out.dims !== undefined && r.detail?.reliable === false) out.unreliable = true;
  return out;
}

const SUPERSCRIPT = '⁰¹²³⁴⁵⁶⁷⁸⁹';
export function superscript(n: number): string {
  return String(n)
    .split('')
    .map((c) => SUPERSCRIPT[Number(c)]!)
    .join('');
}

/** Collects failure footnotes and the sample sizes behind ˢ marks while a report is rendered. */
export class MarkLegend {
  readonly failures: { model: string; layer: string; key: string; reason: string }[] = [];
  /** Per model: the distinct "n of N" of its sampled values. */
  readonly samples = new Map<string, Set<string>>();
  reduced = false;
  unreliable = false;
  noBetter = false;

  /** The footnote number of a failed cell (1-based; one per distinct reason and cell). */
  footnote(model: string, layer: string, key: string, reason: string): number {
    this.failures.push({ model, layer, key, reason });
    return this.failures.length;
  }

  noteSampled(model: string, n: number, N: number): void {
    if (!this.samples.has(model)) this.samples.set(model, new Set());
    this.samples.get(model)!.add(`n = ${n} of N = ${N}`);
  }

  /** The legend lines for the marks that were used. */
  lines(report: Report): string[] {
    const out: string[] = [];
    if (this.samples.size) {
      const per = [...this.samples].map(([m, s]) => (report.models.length > 1 ? `${m}: ${[...s].join(', ')}` : [...s].join(', '))).join('; ');
      out.push(`${SAMPLED_MARK} sampled: computed on the layer's sample buffer, not on all N images (${per})`);
    }
    if (this.reduced) out.push('[kd] computed on the features reduced to k dimensions, not at the layer’s full width');
    if (this.unreliable) out.push(UNRELIABLE_LEGEND);
    if (this.noBetter) out.push(NO_BETTER_LEGEND);
    if (this.failures.length) out.push('failed: the metric could not be computed for this layer; every other number stands (reasons in the footnotes and in report.json)');
    return out;
  }

  footnotes(): string[] {
    return this.failures.map((f, i) => `${superscript(i + 1)} ${f.model} ${f.layer} ${f.key}: ${f.reason}`);
  }
}

/** The number of failed cells in a report (exit 4 when any). */
export function listFailedCells(report: Report): { model: string; layer: string; key: string; reason: string }[] {
  const out: { model: string; layer: string; key: string; reason: string }[] = [];
  for (const m of report.models) for (const l of m.layers) for (const [k, r] of Object.entries(l.metrics)) if (r.failed !== undefined) out.push({ model: m.name, layer: l.id, key: k, reason: r.failed });
  return out;
}
