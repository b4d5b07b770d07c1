/**
 * Per-class first and second moments: the one summary every geometry and collapse metric reads.
 * A streaming ClassStats and a finite sample matrix both produce it, so each metric has a single
 * implementation whichever source the numbers come from (and bootstraps can recompute it).
 *
 * Second-order quantities are stored as sums of squared deviations from each class mean
 * (never as raw Σ‖h‖² or Σ hhᵀ), so features with large offsets lose no precision to
 * cancellation.
 */
import { RuntimeFailure } from '../errors.js';
import { gram } from '../linalg/ort-ops.js';

export type MomentPrecision = 'float32' | 'float64';

export interface ClassMoments {
  /** Number of label values; classes with no samples are carried with count 0. */
  K: number;
  d: number;
  /** n_k. */
  counts: Float64Array;
  /** μ_k, K×d row-major; rows of empty classes are 0. */
  means: Float64Array;
  /** Σ_{i∈k} ‖h_i − μ_k‖² per class. */
  ssw: Float64Array;
  /** Within-class scatter Σ_k Σ_{i∈k} (h_i − μ_k)(h_i − μ_k)ᵀ (d×d), or null when not kept. */
  scatter: Float64Array | null;
}

/** Anything that can hand out moments: a ClassMoments itself or a ClassStats. */
export type MomentsSource = ClassMoments | { moments(): ClassMoments };

export function asMoments(src: MomentsSource): ClassMoments {
  return 'moments' in src && typeof src.moments === 'function' ? src.moments() : (src as ClassMoments);
}

export function totalCount(m: ClassMoments): number {
  let N = 0;
  for (const c of m.counts) N += c;
  return N;
}

/** Classes that have at least one sample: the metrics' K is the number of these. */
export function presentClasses(m: ClassMoments): number[] {
  const out: number[] = [];
  for (let k = 0; k < m.K; k++) if (m.counts[k]! > 0) out.push(k);
  return out;
}

/** μ_G over all samples (weighted by n_k). */
export function globalMean(m: ClassMoments): Float64Array {
  const N = totalCount(m);
  const g = new Float64Array(m.d);
  if (N === 0) return g;
  for (let k = 0; k < m.K; k++) {
    const w = m.counts[k]! / N;
    if (w === 0) continue;
    const o = k * m.d;
    for (let j = 0; j < m.d; j++) g[j]! += w * m.means[o + j]!;
  }
  return g;
}

/** tr(Σ_W) with Σ_W divided by the total N. */
export function withinTrace(m: ClassMoments): number {
  const N = totalCount(m);
  let s = 0;
  for (const v of m.ssw) s += v;
  return N > 0 ? s / N : NaN;
}

/** Var_k = mean ‖h − μ_k‖² over class k. */
export function classVariance(m: ClassMoments, k: number): number {
  return m.counts[k]! > 0 ? m.ssw[k]! / m.counts[k]! : NaN;
}

/**
 * Centred means μ̃_k = μ_k − μ_G of the present classes, as the rows of a K'×d matrix (that is
 * M̃ᵀ in the notation of docs/metrics/collapse.md, M̃ = [μ̃_1 … μ̃_K]).
 */
export function centredMeans(m: ClassMoments): { classes: number[]; rows: Float64Array } {
  const classes = presentClasses(m);
  const g = globalMean(m);
  const rows = new Float64Array(classes.length * m.d);
  classes.forEach((k, r) => {
    for (let j = 0; j < m.d; j++) rows[r * m.d + j] = m.means[k * m.d + j]! - g[j]!;
  });
  return { classes, rows };
}

/** tr(Σ_B), Σ_B = (1/K) Σ_k μ̃_k μ̃_kᵀ over the present classes. */
export function betweenTrace(m: ClassMoments): number {
  const { classes, rows } = centredMeans(m);
  if (classes.length === 0) return NaN;
  let s = 0;
  for (const v of rows) s += v * v;
  return s / classes.length;
}

/** Σ_W = scatter / N (d×d), or null when the scatter was not kept. */
export function withinCovariance(m: ClassMoments): Float64Array | null {
  if (!m.scatter) return null;
  const N = totalCount(m);
  return m.scatter.map((v) => v / N);
}

export function checkLabel(label: number, K: number, sample: number): void {
  if (!Number.isInteger(label) || label < 0 || label >= K) {
    throw new RuntimeFailure(`label ${label} of sample ${sample} in the batch is outside [0, ${K})`);
  }
}

/** A non-finite feature value; the caller adds the layer name (and the dataset id if it has it). */
export class NonFiniteFeatureError extends RuntimeFailure {
  readonly sampleIndex: number;
  readonly featureIndex: number;
  readonly value: number;
  constructor(sampleIndex: number, featureIndex: number, value: number) {
    super(
      `non-finite feature value ${value} in sample ${sampleIndex} of the batch, at feature ${featureIndex}`,
      'the layer produced NaN or Inf for this input; check the preprocessing and the model',
    );
    this.sampleIndex = sampleIndex;
    this.featureIndex = featureIndex;
    this.value = value;
  }
}

/** Throws NonFiniteFeatureError for the first non-finite value of row i (given that one exists). */
export function throwNonFinite(X: ArrayLike<number>, i: number, d: number): never {
  for (let j = 0; j < d; j++) {
    const v = X[i * d + j]!;
    if (!Number.isFinite(v)) throw new NonFiniteFeatureError(i, j, v);
  }
  // A row sum overflowed although every value is finite: impossible for float32 values
  // summed in float64, so reaching here is a bug.
  throw new Error(`row ${i} sum is not finite although its values are`);
}

/**
 * Exact moments of a finite labelled sample (two passes in float64). The within-class scatter
 * is formed only when asked, by an onnxruntime Gram of the class-centred rows.
 */
export async function momentsFromSamples(
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  labels: Int32Array,
  K: number,
  opts: { scatter?: boolean; precision?: MomentPrecision } = {},
): Promise<ClassMoments> {
  const m = momentsNoScatter(X, n, d, labels, K);
  if (opts.scatter) {
    const C = (opts.precision ?? 'float64') === 'float64' ? new Float64Array(n * d) : new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const o = labels[i]! * d;
      for (let j = 0; j < d; j++) C[i * d + j] = X[i * d + j]! - m.means[o + j]!;
    }
    m.scatter = await gram(C, n, d);
  }
  return m;
}

/** The trace-level part of momentsFromSamples, synchronous (cheap enough to bootstrap). */
export function momentsNoScatter(
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  labels: Int32Array,
  K: number,
): ClassMoments {
  if (X.length !== n * d) throw new Error(`moments: ${X.length} values for ${n}×${d}`);
  if (labels.length !== n) throw new Error(`moments: ${labels.length} labels for ${n} rows`);
  const counts = new Float64Array(K);
  const means = new Float64Array(K * d);
  const ssw = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    const k = labels[i]!;
    checkLabel(k, K, i);
    counts[k]!++;
    const o = k * d;
    let rowSum = 0;
    for (let j = 0; j < d; j++) {
      const v = X[i * d + j]!;
      means[o + j]! += v;
      rowSum += v;
    }
    if (!Number.isFinite(rowSum)) throwNonFinite(X, i, d);
  }
  for (let k = 0; k < K; k++) {
    if (counts[k] === 0) continue;
    const o = k * d;
    for (let j = 0; j < d; j++) means[o + j]! /= counts[k]!;
  }
  for (let i = 0; i < n; i++) {
    const o = labels[i]! * d;
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = X[i * d + j]! - means[o + j]!;
      s += v * v;
    }
    ssw[labels[i]!]! += s;
  }
  return { K, d, counts, means, ssw, scatter: null };
}
