/**
 * The saturation guard of docs/metrics/separability.md and the coordinates the κ estimator works in.
 *
 * Saturation: with d ≥ m + n − 1, points in general position are always separable, so κ = 1
 * even for identical classes; and well before that, maximising over w is optimistic. The guard
 * asks for d ≤ maxDimFraction·(m + n) for the smallest class pair (default ¼) and otherwise
 * reduces by PCA to k = min(d, ⌊maxDimFraction·(m + n)_min⌋), or refuses.
 *
 * PCA is fitted on the whole sample matrix (all classes, no labels): the top-k eigenvectors of
 * the d×d covariance (formed by onnxruntime), or of the N×N Gram when N < d. Caveat: PCA is not
 * affine-invariant (which k directions are kept depends on the coordinate system), so κ after a
 * reduction is invariant only to affine maps within the kept space.
 *
 * Whitening: the (reduced) features are then whitened by their total covariance, which turns any
 * invertible affine map of the features into an orthogonal map of the whitened coordinates; the
 * estimator in candidates.ts is rotation-equivariant, so κ is affine-invariant in practice.
 * Whitening works on the correlation matrix with a rank-revealing pivoted Cholesky, so constant
 * features (dead units) and exactly collinear ones are dropped: along those directions every
 * row has the same score and nothing can be separated.
 */
import { UsageError } from '../../errors.js';
import { centredRows, symEig, symTopEig } from '../../linalg/dense.js';
import { gram, matmul, outerGram, type FloatArray } from '../../linalg/ort-ops.js';
import { Rng } from '../../util/rng.js';
import { lowerInverse, orthonormalRows, pivotedCholesky } from './small.js';

export type ReduceMode = 'pca' | 'refuse' | 'none';

/** The library default; the audit asks for less (see AUDIT_MAX_DIM_FRACTION in src/pipeline/layer-metrics.ts). */
export const DEFAULT_MAX_DIM_FRACTION = 0.25;

export interface GuardOptions {
  /** What to do when d is not well below the per-pair sample count. Default 'pca'. */
  reduce?: ReduceMode;
  /** d must be at most this fraction of the smallest pair's rows. Default 0.25. */
  maxDimFraction?: number;
  /** PCA target dimension; default ⌊maxDimFraction·(m+n)_min⌋. */
  pcaDim?: number;
}

export interface ReductionInfo {
  /** 'pca:k' or 'none'. */
  reduction: string;
  reason: string;
  /** Width of the input features. */
  inputDim: number;
  /** Width after the reduction (k, or d). */
  dim: number;
  /** Rows of the smallest class pair (the guard's reference). */
  minPairRows: number;
  /** Numerical rank of the whitened coordinates the estimator ran in. */
  whitenedRank: number;
  /** The guard's fraction (dim ≤ fraction · minPairRows), to say how many rows a higher dim needs. */
  maxDimFraction?: number;
}

export interface GuardDecision {
  k: number | null;
  reduction: string;
  reason: string;
}

/** Decides the reduction from d and the smallest pair's row count; throws for reduce: 'refuse'. */
export function saturationGuard(d: number, minPairRows: number, opts: GuardOptions = {}): GuardDecision {
  const frac = opts.maxDimFraction ?? DEFAULT_MAX_DIM_FRACTION;
  if (!(frac > 0 && frac <= 1)) throw new UsageError(`maxDimFraction must be in (0, 1], got ${frac}`);
  const mode = opts.reduce ?? 'pca';
  // Whatever the fraction, the limit stays below saturation: κ = 1 once d ≥ m + n − 1.
  const limit = Math.max(1, Math.min(Math.floor(frac * minPairRows), minPairRows - 2));
  const what = `d=${d}, smallest class pair ${minPairRows} rows, limit ${limit} = min(⌊${frac}·${minPairRows}⌋, ${minPairRows} − 2)`;
  if (opts.pcaDim !== undefined) {
    if (!Number.isInteger(opts.pcaDim) || opts.pcaDim < 1) throw new UsageError(`pcaDim must be a positive integer, got ${opts.pcaDim}`);
    if (mode === 'pca' && opts.pcaDim < d) {
      const risk = opts.pcaDim > limit ? '; above the limit, so κ may be saturated or optimistic' : '';
      return { k: opts.pcaDim, reduction: `pca:${opts.pcaDim}`, reason: `pcaDim=${opts.pcaDim} requested (${what})${risk}` };
    }
  }
  if (d <= limit) {
    const how = frac <= DEFAULT_MAX_DIM_FRACTION ? 'well below the per-pair sample count' : 'below saturation, but with this fraction not well below the per-pair sample count: κ may be optimistic';
    return { k: null, reduction: 'none', reason: `${what}: d is ${how}` };
  }
  if (mode === 'refuse') {
    throw new UsageError(
      `linear separability: ${d} dimensions is not well below the ${minPairRows} rows of the smallest class pair (limit ${limit}); κ would be saturated (any ${minPairRows} points in general position are separable once d ≥ ${minPairRows - 1}) or optimistic`,
      `use more samples per class (≥ ${Math.ceil(d / frac / 2)}), reduce the layer first (PCA, global average pooling), or pass reduce: 'pca'`,
    );
  }
  if (mode === 'none') {
    return { k: null, reduction: 'none', reason: `reduce: 'none' requested although ${what}: κ may be saturated or optimistic` };
  }
  return { k: limit, reduction: `pca:${limit}`, reason: `${what}: d is not well below the per-pair sample count, PCA to ${limit}` };
}

export interface Prepared {
  /** N×r whitened coordinates (float64, row-major). */
  Z: Float64Array;
  r: number;
  /** N×dim coordinates after the reduction but before whitening (PCA scores, or the centred input). */
  Y: Float64Array;
  dim: number;
}

/** Top-k eigenpairs (values descending) of a symmetric dim×dim matrix; vectors as k rows of dim. */
export async function topEigen(A: Float64Array, dim: number, k: number, seed: number): Promise<{ values: Float64Array; vectors: Float64Array; k: number }> {
  k = Math.min(k, dim);
  if (dim <= 640 || k + 16 >= 0.75 * dim) {
    // Direct: the k leading pairs of the tridiagonal form (~0.3 s at dim 512, k 50; the full
    // decomposition costs ~1.1 s there and grows as dim³).
    const e = symTopEig(A, dim, k);
    const vectors = new Float64Array(k * dim);
    for (let j = 0; j < k; j++) for (let i = 0; i < dim; i++) vectors[j * dim + i] = e.vectors[i * k + j]!;
    return { values: e.values, vectors, k };
  }
  // Randomised subspace iteration (Halko, Martinsson & Tropp 2011, alg. 4.4) with Rayleigh–Ritz:
  // products through onnxruntime, only a (k+p)×(k+p) eigenproblem in JS. A is symmetric, so
  // Qᵀ·A (rows of Q as vectors) is (A·Q)ᵀ and no transposes are needed.
  const c = Math.min(dim, k + Math.max(16, Math.ceil(k / 4)));
  const rng = new Rng(seed);
  let Q: Float64Array = new Float64Array(c * dim);
  for (let i = 0; i < Q.length; i++) Q[i] = rng.normal();
  let rows = c;
  for (let it = 0; it < 7; it++) {
    Q = await matmul(Q.subarray(0, rows * dim), A, rows, dim, dim);
    rows = orthonormalRows(Q, rows, dim);
  }
  const Y = await matmul(Q.subarray(0, rows * dim), A, rows, dim, dim);
  const Qt = new Float64Array(dim * rows);
  for (let i = 0; i < rows; i++) for (let j = 0; j < dim; j++) Qt[j * rows + i] = Q[i * dim + j]!;
  const B = await matmul(Y, Qt, rows, dim, rows);
  const e = symEig(B, rows);
  const kk = Math.min(k, rows);
  const U = new Float64Array(kk * rows);
  for (let j = 0; j < kk; j++) for (let i = 0; i < rows; i++) U[j * rows + i] = e.vectors[i * rows + j]!;
  const vectors = await matmul(U, Q.subarray(0, rows * dim), kk, rows, dim);
  return { values: e.values.slice(0, kk), vectors, k: kk };
}

/**
 * Drops principal directions whose variance is rounding noise (≤ 1e-10 of the largest): the
 * whitening would otherwise blow them up to unit variance.
 */
function keepPositive(e: { values: Float64Array; vectors: Float64Array; k: number }): { values: Float64Array; vectors: Float64Array; k: number } {
  const top = e.values[0] ?? 0;
  let k = 0;
  while (k < e.k && e.values[k]! > WHITEN_RTOL * top && top > 0) k++;
  const dim = e.k > 0 ? e.vectors.length / e.k : 0;
  return { values: e.values.slice(0, k), vectors: e.vectors.slice(0, k * dim), k };
}

/** Relative threshold on conditional variance below which a whitened direction is dropped. */
const WHITEN_RTOL = 1e-10;

/**
 * Whitens N×p centred coordinates Y by their covariance: returns Z = Y W with cov(Z) = I_r,
 * r the numerical rank. `scaleRef` (per column) is the magnitude a constant column's rounding
 * residue is relative to (the column mean before centring); columns whose spread is within
 * 1e-12 of it are constant.
 */
export async function whiten(Y: Float64Array, N: number, p: number, scaleRef?: Float64Array): Promise<{ Z: Float64Array; r: number }> {
  const C = await gram(Y, N, p);
  const alive: number[] = [];
  const sd = new Float64Array(p);
  for (let j = 0; j < p; j++) {
    const s = Math.sqrt(Math.max(0, C[j * p + j]! / N));
    sd[j] = s;
    const ref = scaleRef ? Math.abs(scaleRef[j]!) : 0;
    if (s > 1e-12 * ref && s > 0) alive.push(j);
  }
  const q = alive.length;
  const R = new Float64Array(q * q);
  for (let a = 0; a < q; a++) {
    for (let b = 0; b < q; b++) {
      const i = alive[a]!;
      const j = alive[b]!;
      R[a * q + b] = C[i * p + j]! / N / (sd[i]! * sd[j]!);
    }
  }
  const pc = pivotedCholesky(R, q, WHITEN_RTOL);
  const r = pc.rank;
  const Linv = lowerInverse(pc.L, r);
  // z_k = Σ_i (L⁻¹)_{ki} y_{c_i} / sd_{c_i} over the pivot columns c_i.
  const W = new Float64Array(p * r);
  for (let i = 0; i < r; i++) {
    const col = alive[pc.piv[i]!]!;
    for (let k = 0; k < r; k++) W[col * r + k] = Linv[k * r + i]! / sd[col]!;
  }
  if (r === 0) return { Z: new Float64Array(0), r: 0 };
  return { Z: await matmul(Y, W, N, p, r), r };
}

/**
 * Centres X, applies the guard's PCA (when k is given) and whitens. Label-free: the same
 * coordinates serve the in-sample, held-out and permuted-label runs.
 */
export async function prepareFeatures(X: FloatArray, N: number, d: number, k: number | null, seed: number): Promise<Prepared> {
  const { centred: Xc, mean } = centredRows(X, N, d);
  if (k === null || k >= d) {
    const w = await whiten(Xc, N, d, mean);
    return { ...w, Y: Xc, dim: d };
  }
  let Y: Float64Array;
  if (d <= N) {
    const C = await gram(Xc, N, d);
    for (let i = 0; i < C.length; i++) C[i]! /= N;
    const e = keepPositive(await topEigen(C, d, k, seed));
    // Y = Xc V with V the d×k eigenvectors (stored as k rows).
    const V = new Float64Array(d * e.k);
    for (let j = 0; j < e.k; j++) for (let i = 0; i < d; i++) V[i * e.k + j] = e.vectors[j * d + i]!;
    Y = await matmul(Xc, V, N, d, e.k);
    k = e.k;
  } else {
    // N < d: eigenvectors u_j of G = Xc Xcᵀ/N give the PCA scores directly, Xc v_j = √(Nλ_j) u_j.
    const G = await outerGram(Xc, N, d);
    for (let i = 0; i < G.length; i++) G[i]! /= N;
    const e = keepPositive(await topEigen(G, N, k, seed));
    k = e.k;
    Y = new Float64Array(N * k);
    for (let j = 0; j < k; j++) {
      const s = Math.sqrt(Math.max(0, N * e.values[j]!));
      for (let i = 0; i < N; i++) Y[i * k + j] = e.vectors[j * N + i]! * s;
    }
  }
  const w = await whiten(Y, N, k);
  return { ...w, Y, dim: k };
}
