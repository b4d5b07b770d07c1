/**
 * Bootstrap confidence intervals for any metric of a sample matrix: the percentile interval of
 * the matrix's own statistic, and an interval for the same statistic computed on all the rows the
 * matrix was sampled from (`rescaledInterval`). Rows are resampled with replacement within each
 * class by default (the buffer is stratified, so class sizes are part of the design, and a
 * resample that loses a class would change K).
 */
import { LayerprobeError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';

export interface BootstrapOptions {
  /** Default 0.95. */
  level?: number;
  /** Default 200. */
  reps?: number;
  seed: number;
  /** Resample within classes (default true) or over all rows. */
  stratified?: boolean;
}

export interface BootstrapResult {
  /**
   * Percentile interval, or null when fewer than half of the replicates were finite: an interval
   * from the few resamples where the statistic happened to be defined would look normal and mean
   * nothing (e.g. compression of a dead layer, NaN on every resample).
   */
  ci: [number, number] | null;
  /** fn on the original matrix. */
  estimate: number;
  /** Finite replicate values, ascending. */
  replicates: Float64Array;
  /** Replicates that were not finite (or threw) and were left out. */
  failed: number;
  level: number;
  reps: number;
}

/** Linear-interpolation quantile (type 7) of ascending values. */
export function quantileSorted(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Row indices of one resample. */
export function resampleRows(m: Pick<SampleMatrix, 'n' | 'labels' | 'K'>, rng: Rng, stratified: boolean): Int32Array {
  const idx = new Int32Array(m.n);
  if (!stratified) {
    for (let i = 0; i < m.n; i++) idx[i] = rng.int(m.n);
    return idx;
  }
  const byClass: number[][] = Array.from({ length: m.K }, () => []);
  for (let i = 0; i < m.n; i++) byClass[m.labels[i]!]!.push(i);
  let o = 0;
  for (const rows of byClass) for (let t = 0; t < rows.length; t++) idx[o++] = rows[rng.int(rows.length)]!;
  return idx;
}

export function takeRows(m: SampleMatrix, idx: Int32Array): SampleMatrix {
  const { d } = m;
  const X = new Float32Array(idx.length * d);
  const labels = new Int32Array(idx.length);
  const ids = new Int32Array(idx.length);
  const predictions = m.predictions ? new Int32Array(idx.length) : undefined;
  idx.forEach((r, i) => {
    X.set(m.X.subarray(r * d, (r + 1) * d), i * d);
    labels[i] = m.labels[r]!;
    ids[i] = m.ids[r]!;
    if (predictions) predictions[i] = m.predictions![r]!;
  });
  return { X, n: idx.length, d, K: m.K, labels, ids, ...(predictions ? { predictions } : {}) };
}

export async function bootstrapCi(
  fn: (m: SampleMatrix) => number | Promise<number>,
  matrix: SampleMatrix,
  opts: BootstrapOptions,
): Promise<BootstrapResult> {
  return (await bootstrapCis(async (m) => [await fn(m)], matrix, opts))[0]!;
}

/**
 * Several statistics over the same resamples: `fn` returns all of them from one resample, so
 * work they share (class moments, say) is done once per resample, not once per statistic.
 */
export async function bootstrapCis(
  fn: (m: SampleMatrix) => number[] | Promise<number[]>,
  matrix: SampleMatrix,
  opts: BootstrapOptions,
): Promise<BootstrapResult[]> {
  const level = opts.level ?? 0.95;
  const reps = opts.reps ?? 200;
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap level must be in (0,1), got ${level}`);
  const rng = new Rng(opts.seed);
  const stratified = opts.stratified ?? true;
  const estimates = await fn(matrix);
  const vals: number[][] = estimates.map(() => []);
  const failed = estimates.map(() => 0);
  for (let r = 0; r < reps; r++) {
    const sample = takeRows(matrix, resampleRows(matrix, rng, stratified));
    let v: number[];
    try {
      v = await fn(sample);
    } catch (e) {
      // A degenerate resample (e.g. all means equal) is a failed replicate; anything else is a bug.
      if (!(e instanceof LayerprobeError)) throw e;
      v = estimates.map(() => NaN);
    }
    v.forEach((x, k) => {
      if (Number.isFinite(x)) vals[k]!.push(x);
      else failed[k]!++;
    });
  }
  return estimates.map((estimate, k) => {
    const replicates = Float64Array.from(vals[k]!).sort();
    const ci: [number, number] | null = replicates.length * 2 >= reps && replicates.length > 0 ? [quantileSorted(replicates, (1 - level) / 2), quantileSorted(replicates, (1 + level) / 2)] : null;
    return { ci, estimate, replicates, failed: failed[k]!, level, reps };
  });
}

/**
 * An interval for a statistic whose value was computed on all N rows, from a bootstrap of an
 * m-row random subsample of them (the audit's sample buffer; C and D are exact from streaming
 * statistics, but only the buffer can be resampled). The bootstrap shows the statistic's error
 * at size m; for a smooth statistic the bias shrinks as 1/n and the spread as 1/√n, so the error
 * at N is taken as (m/N)·bias + √(m/N)·(replicate − mean replicate): the m-out-of-n rescaling of
 * Bickel, Götze & van Zwet (1997), with the bootstrap bias estimate rescaled on its own. With
 * m = N this is the basic bootstrap interval [2θ̂ − q_hi, 2θ̂ − q_lo], which corrects the plug-in
 * bias instead of repeating it (a percentile interval of C sits below C, because resampling
 * inflates tr(Σ_B) by about tr(Σ_W)/n_k). Null when the bootstrap gave no interval.
 */
export function rescaledInterval(value: number, b: BootstrapResult, m: number, N: number): [number, number] | null {
  if (!b.ci || !Number.isFinite(value) || !(m > 0) || !(N > 0)) return null;
  const f = Math.min(1, m / N);
  let mean = 0;
  for (const v of b.replicates) mean += v;
  mean /= b.replicates.length;
  const bias = f * (mean - b.estimate);
  const spread = Math.sqrt(f);
  return [value - bias - spread * (b.ci[1] - mean), value - bias - spread * (b.ci[0] - mean)];
}

/** Whether an interval leaves out its own value (possible for a bias-corrected interval). */
export function excludesValue(value: number | null, ci: readonly [number, number]): boolean {
  return value !== null && (value < ci[0] || value > ci[1]);
}
