/**
 * The small dense float64 kernels every hand-written solver here needs (BLAS level 1): dot
 * product, y ← y + a·x, and the max-abs norm, on plain typed arrays with offsets so that rows of
 * a row-major matrix can be used in place. One home, so that the unrolling lives in one place.
 */

/**
 * Σ_i a[ao+i]·b[bo+i] over n terms. Four partial sums: independent chains the CPU can overlap
 * (≈2× on a few hundred terms); the remainder goes into the first.
 */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length, ao = 0, bo = 0): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[ao + i]! * b[bo + i]!;
    s1 += a[ao + i + 1]! * b[bo + i + 1]!;
    s2 += a[ao + i + 2]! * b[bo + i + 2]!;
    s3 += a[ao + i + 3]! * b[bo + i + 3]!;
  }
  for (; i < n; i++) s0 += a[ao + i]! * b[bo + i]!;
  return s0 + s1 + s2 + s3;
}

/** y[yo+i] ← y[yo+i] + alpha·x[xo+i] for i < n. */
export function axpy(alpha: number, x: ArrayLike<number>, y: Float64Array, n = y.length, xo = 0, yo = 0): void {
  for (let i = 0; i < n; i++) y[yo + i] = y[yo + i]! + alpha * x[xo + i]!;
}

/** Euclidean norm of the first n entries (no scaling; see linalg/dense norm2 for extreme ranges). */
export function norm(a: ArrayLike<number>, n = a.length): number {
  return Math.sqrt(dot(a, a, n));
}

/** max_i |a_i|. */
export function infNorm(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
