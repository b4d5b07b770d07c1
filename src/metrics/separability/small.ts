/**
 * Dense float64 helpers for the r×r systems of the separability estimators (r is bounded by the
 * saturation guard, so these are small): Cholesky solves, a rank-revealing pivoted Cholesky for
 * whitening, and modified Gram–Schmidt for the subspace iteration. Written on typed arrays
 * because ml-matrix's per-element access costs ~10× here and these run once per class pair.
 */
import { RuntimeFailure } from '../../errors.js';
import { choleskyInPlace, choleskySolve } from '../../linalg/chol.js';

/** Lower-triangular L with A = L Lᵀ (row-major n×n). Throws when A is not positive definite. */
export function cholesky(A: Float64Array, n: number): Float64Array {
  const L = new Float64Array(A);
  if (!choleskyInPlace(L, n)) throw new RuntimeFailure('Cholesky: matrix is not positive definite');
  // choleskyInPlace leaves the upper triangle as it found it; callers read L as a full matrix.
  for (let i = 0; i < n; i++) L.fill(0, i * n + i + 1, (i + 1) * n);
  return L;
}

/** Solves L Lᵀ x = b for the factor of `cholesky` into a new array (`Lt`: see choleskySolve). */
export function cholSolve(L: Float64Array, n: number, b: ArrayLike<number>, Lt?: Float64Array): Float64Array {
  return choleskySolve(L, n, Float64Array.from(b), Lt);
}

export function transposeSquare(A: Float64Array, n: number): Float64Array {
  const T = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) T[j * n + i] = A[i * n + j]!;
  return T;
}

export interface PivotedCholesky {
  /** Number of pivots kept. */
  rank: number;
  /** Original indices of the kept pivots, in pivot order. */
  piv: Int32Array;
  /** rank×rank lower-triangular factor of A restricted to the kept pivots: A[piv,piv] = L Lᵀ. */
  L: Float64Array;
}

/**
 * Diagonal-pivoted Cholesky of a symmetric positive semi-definite n×n matrix, stopped when the
 * largest remaining Schur-complement diagonal falls to rtol·(largest diagonal of A). The kept
 * pivots span the numerical range: every other coordinate is (to rtol) a linear combination of
 * them, so restricting to them loses no direction along which the data vary.
 */
export function pivotedCholesky(A: Float64Array, n: number, rtol: number): PivotedCholesky {
  const S = new Float64Array(A);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  // Columns of the factor, stored row-major in the permuted order as they are produced.
  const F = new Float64Array(n * n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, S[i * n + i]!);
  const diag = new Float64Array(n);
  for (let i = 0; i < n; i++) diag[i] = S[i * n + i]!;
  let rank = 0;
  for (let j = 0; j < n; j++) {
    let p = j;
    for (let i = j + 1; i < n; i++) if (diag[perm[i]!]! > diag[perm[p]!]!) p = i;
    const pivVal = diag[perm[p]!]!;
    if (!(pivVal > rtol * maxDiag) || !(maxDiag > 0)) break;
    [perm[j], perm[p]] = [perm[p]!, perm[j]!];
    // Swap the already-computed factor rows j and p.
    for (let k = 0; k < j; k++) {
      const t = F[j * n + k]!;
      F[j * n + k] = F[p * n + k]!;
      F[p * n + k] = t;
    }
    const pj = perm[j]!;
    const ljj = Math.sqrt(pivVal);
    F[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const pi = perm[i]!;
      let t = S[pi * n + pj]!;
      for (let k = 0; k < j; k++) t -= F[i * n + k]! * F[j * n + k]!;
      const lij = t / ljj;
      F[i * n + j] = lij;
      diag[pi]! -= lij * lij;
    }
    rank++;
  }
  const L = new Float64Array(rank * rank);
  for (let i = 0; i < rank; i++) for (let k = 0; k <= i; k++) L[i * rank + k] = F[i * n + k]!;
  return { rank, piv: perm.slice(0, rank), L };
}

/** Inverse of a lower-triangular r×r matrix (row-major); the result is lower-triangular. */
export function lowerInverse(L: Float64Array, r: number): Float64Array {
  const T = new Float64Array(r * r);
  for (let j = 0; j < r; j++) {
    T[j * r + j] = 1 / L[j * r + j]!;
    for (let i = j + 1; i < r; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += L[i * r + k]! * T[k * r + j]!;
      T[i * r + j] = -s / L[i * r + i]!;
    }
  }
  return T;
}

/**
 * Orthonormalises the rows of Q (c×dim, row-major) in place by modified Gram–Schmidt, twice
 * ("twice is enough" for orthogonality to rounding). Rows that fall below rtol of their original
 * norm are dependent and dropped; returns the number kept (kept rows come first).
 */
export function orthonormalRows(Q: Float64Array, c: number, dim: number, rtol = 1e-10): number {
  let kept = 0;
  for (let i = 0; i < c; i++) {
    const ri = i * dim;
    let n0 = 0;
    for (let t = 0; t < dim; t++) n0 += Q[ri + t]! * Q[ri + t]!;
    n0 = Math.sqrt(n0);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < kept; k++) {
        const rk = k * dim;
        let s = 0;
        for (let t = 0; t < dim; t++) s += Q[ri + t]! * Q[rk + t]!;
        for (let t = 0; t < dim; t++) Q[ri + t]! -= s * Q[rk + t]!;
      }
    }
    let nrm = 0;
    for (let t = 0; t < dim; t++) nrm += Q[ri + t]! * Q[ri + t]!;
    nrm = Math.sqrt(nrm);
    if (!(nrm > rtol * n0) || n0 === 0) continue;
    const ro = kept * dim;
    for (let t = 0; t < dim; t++) Q[ro + t] = Q[ri + t]! / nrm;
    kept++;
  }
  return kept;
}
