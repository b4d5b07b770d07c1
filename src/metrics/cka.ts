/**
 * Representation similarity (docs/metrics/similarity.md): linear CKA (Kornblith et al. 2019) between layers,
 * on the same n samples. Each layer is turned once into its centred n×n Gram K = HXXᵀH (through
 * onnxruntime), after which every pair of layers costs one O(n²) Frobenius inner product — so an
 * L×L matrix over all layers of several models needs L Grams, not L² products. The debiased
 * variant uses the unbiased HSIC estimator (Song et al. 2012) on Grams with zeroed diagonals.
 */
import { outerGram } from '../linalg/ort-ops.js';
import { RuntimeFailure } from '../errors.js';

export type CkaMethod = 'linear' | 'debiased';

export const CKA_DEFINITION: Record<CkaMethod, string> = {
  linear: 'linear CKA = ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F) on centred features (Kornblith et al. 2019; docs/metrics/similarity.md#cka)',
  debiased: 'debiased linear CKA: unbiased HSIC estimator (Song et al. 2012) on linear Grams (Kornblith et al. 2019; docs/metrics/similarity.md#cka-debiased)',
};

/** A layer's Gram, prepared for CKA. */
export interface CkaGram {
  n: number;
  /** n×n, float64. Centred (linear) or diagonal-zeroed (debiased). */
  K: Float64Array;
  /** Row sums of K (debiased only). */
  rowSums?: Float64Array;
  /** HSIC of K with itself. */
  self: number;
}

function centreColumns(X: Float32Array, n: number, d: number): Float32Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += X[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = X[i * d + j]! - mean[j]!;
  return out;
}

function frob(A: Float64Array, B: Float64Array): number {
  let s = 0;
  for (let i = 0; i < A.length; i++) s += A[i]! * B[i]!;
  return s;
}

/** Unbiased HSIC of two diagonal-zeroed Grams (Song et al. 2012, eq. 5), scaled by n(n−3). */
function hsicUnbiased(a: CkaGram, b: CkaGram): number {
  const n = a.n;
  const ra = a.rowSums!;
  const rb = b.rowSums!;
  let sa = 0;
  let sb = 0;
  let cross = 0;
  for (let i = 0; i < n; i++) {
    sa += ra[i]!;
    sb += rb[i]!;
    cross += ra[i]! * rb[i]!;
  }
  return frob(a.K, b.K) + (sa * sb) / ((n - 1) * (n - 2)) - (2 / (n - 2)) * cross;
}

export async function ckaGram(X: Float32Array, n: number, d: number, method: CkaMethod = 'linear'): Promise<CkaGram> {
  if (X.length !== n * d) throw new Error(`ckaGram: ${X.length} values for ${n}×${d}`);
  if (method === 'debiased' && n < 4) throw new RuntimeFailure(`debiased CKA needs at least 4 samples (got ${n})`);
  // Centring the features centres the Gram: H X Xᵀ H = (HX)(HX)ᵀ.
  const K = await outerGram(method === 'linear' ? centreColumns(X, n, d) : X, n, d);
  if (method === 'linear') return { n, K, self: frob(K, K) };
  for (let i = 0; i < n; i++) K[i * n + i] = 0;
  const rowSums = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += K[i * n + j]!;
    rowSums[i] = s;
  }
  const g: CkaGram = { n, K, rowSums, self: 0 };
  g.self = hsicUnbiased(g, g);
  return g;
}

/** CKA of two prepared Grams of the same samples; NaN when a layer is constant. */
export function ckaFromGrams(a: CkaGram, b: CkaGram): number {
  if (a.n !== b.n) throw new Error(`CKA needs the same samples (got ${a.n} and ${b.n} rows)`);
  const num = a.rowSums ? hsicUnbiased(a, b) : frob(a.K, b.K);
  const den = Math.sqrt(a.self * b.self);
  return den > 0 ? num / den : NaN;
}

/** The symmetric CKA matrix over a list of layers (one Gram each). */
export async function ckaMatrix(layers: readonly { X: Float32Array; n: number; d: number }[], method: CkaMethod = 'linear'): Promise<number[][]> {
  const grams: CkaGram[] = [];
  for (const l of layers) grams.push(await ckaGram(l.X, l.n, l.d, method));
  const m = grams.map(() => new Array<number>(grams.length).fill(NaN));
  for (let i = 0; i < grams.length; i++) {
    for (let j = i; j < grams.length; j++) {
      const v = ckaFromGrams(grams[i]!, grams[j]!);
      m[i]![j] = v;
      m[j]![i] = v;
    }
  }
  return m;
}
