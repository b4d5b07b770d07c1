/**
 * Cholesky on small dense row-major float64 matrices. The factorisation reports failure by
 * returning false (the barrier solver's line search uses it as the test "still inside the
 * cone"); `cholesky` in metrics/separability/small.ts wraps it for callers that want a throw.
 */
import { dot } from './kernels.js';

/** In place: the lower triangle of A becomes L with A = L Lᵀ (upper triangle untouched). */
export function choleskyInPlace(A: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let s = A[rj + j]!;
    for (let k = 0; k < j; k++) s -= A[rj + k]! * A[rj + k]!;
    if (!(s > 0) || !Number.isFinite(s)) return false;
    const ljj = Math.sqrt(s);
    A[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      A[ri + j] = (A[ri + j]! - dot(A, A, j, ri, rj)) / ljj;
    }
  }
  return true;
}

/** log det A from its Cholesky factor. */
export function logDetFromCholesky(L: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(L[i * n + i]!);
  return 2 * s;
}

/**
 * In place: b ← (L Lᵀ)⁻¹ b. `Lt` (Lᵀ as a full row-major matrix) makes the back substitution
 * walk rows instead of columns: ~5× faster at n = 250, for callers that solve with one factor
 * many times.
 */
export function choleskySolve(L: Float64Array, n: number, b: Float64Array, Lt?: Float64Array): Float64Array {
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    const ri = i * n;
    for (let k = 0; k < i; k++) s -= L[ri + k]! * b[k]!;
    b[i] = s / L[ri + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    if (Lt) {
      const ri = i * n;
      for (let k = i + 1; k < n; k++) s -= Lt[ri + k]! * b[k]!;
    } else {
      for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * b[k]!;
    }
    b[i] = s / L[i * n + i]!;
  }
  return b;
}

/** (L Lᵀ)⁻¹ as a full symmetric matrix. */
export function choleskyInverse(L: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  const col = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    col.fill(0);
    col[j] = 1;
    choleskySolve(L, n, col);
    for (let i = 0; i < n; i++) inv[i * n + j] = col[i]!;
  }
  // Symmetrise the rounding so that downstream quadratic forms see an exactly symmetric matrix.
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const v = 0.5 * (inv[i * n + j]! + inv[j * n + i]!);
      inv[i * n + j] = v;
      inv[j * n + i] = v;
    }
  }
  return inv;
}
