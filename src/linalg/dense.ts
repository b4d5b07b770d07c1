/**
 * Small dense linear algebra in float64 on row-major Float64Arrays.
 *
 * The symmetric eigensolver is written by hand on typed arrays (Householder tridiagonalisation
 * + implicit QL, after Numerical Recipes' tred2/tqli) rather than taken from ml-matrix: ml-matrix
 * goes through per-element get/set calls and needs ~2 s at n = 512 and ~12 s at 1024, where this
 * runs several times faster, and eigenvalues alone skip the vector accumulation entirely. Every
 * inner loop walks contiguous memory (the vectors are rotated as rows of Vᵀ). ml-matrix remains
 * the independent reference in the tests.
 */
import { RuntimeFailure } from '../errors.js';
import { gram, outerGram, type FloatArray } from './ort-ops.js';

export interface SymEig {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** n×n row-major; column j is the unit eigenvector of values[j]. */
  vectors: Float64Array;
}

/** Eigen-decomposition of a symmetric n×n matrix (only its symmetric part is used). */
export function symEig(A: Float64Array, n: number): SymEig {
  if (A.length !== n * n) throw new Error(`symEig: ${A.length} values for ${n}×${n}`);
  const S = new Float64Array(A);
  symmetrize(S, n);
  const { d, e, z } = tridiagonalize(S, n, true);
  // Rotate eigenvectors as rows of zt = zᵀ, so that QL's plane rotations touch contiguous rows.
  const zt = transpose(z, n, n);
  tqli(d, e, n, zt);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => d[b]! - d[a]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, j) => {
    values[j] = d[src]!;
    for (let i = 0; i < n; i++) vectors[i * n + j] = zt[src * n + i]!;
  });
  return { values, vectors };
}

/**
 * The rows of X (n×d row-major; only `rows`, in that order, when given) centred on their own
 * column means, in float64, and those means. An empty selection has mean 0.
 */
export function centredRows(X: ArrayLike<number>, n: number, d: number, rows?: ArrayLike<number>): { centred: Float64Array; mean: Float64Array } {
  const m = rows ? rows.length : n;
  const at = (t: number): number => (rows ? rows[t]! : t) * d;
  const mean = new Float64Array(d);
  for (let t = 0; t < m; t++) {
    const o = at(t);
    for (let j = 0; j < d; j++) mean[j]! += X[o + j]!;
  }
  if (m > 0) for (let j = 0; j < d; j++) mean[j]! /= m;
  const centred = new Float64Array(m * d);
  for (let t = 0; t < m; t++) {
    const o = at(t);
    for (let j = 0; j < d; j++) centred[t * d + j] = X[o + j]! - mean[j]!;
  }
  return { centred, mean };
}

/** In place: A ← (A + Aᵀ)/2. */
export function symmetrize(A: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = 0.5 * (A[i * n + j]! + A[j * n + i]!);
      A[i * n + j] = v;
      A[j * n + i] = v;
    }
  }
}

export interface PinvOptions {
  /**
   * Eigenvalues with |λ| ≤ rtol·max|λ| count as zero. Default max(n,1)·1e3·ε: well above the
   * rounding noise of a computed Gram, far below any real direction.
   */
  rtol?: number;
  /** Keep at most this many eigenvalues (the largest in magnitude), when the rank is known. */
  maxRank?: number;
}

export interface SymPinv {
  pinv: Float64Array;
  /** Number of eigenvalues kept. */
  rank: number;
  eig: SymEig;
  /** Which eigenvalues (indices into eig.values) were kept. */
  kept: number[];
}

/** Which eigenvalues of a symmetric matrix a pseudo-inverse keeps, by the rules of PinvOptions. */
export function keptEigenvalues(values: Float64Array, n: number, opts: PinvOptions = {}): number[] {
  const rtol = opts.rtol ?? Math.max(n, 1) * 1e3 * Number.EPSILON;
  let maxAbs = 0;
  for (const v of values) maxAbs = Math.max(maxAbs, Math.abs(v));
  const idx = Array.from(values.keys())
    .filter((i) => Math.abs(values[i]!) > rtol * maxAbs && maxAbs > 0)
    .sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!));
  return opts.maxRank === undefined ? idx : idx.slice(0, Math.max(0, opts.maxRank));
}

/** Moore–Penrose pseudo-inverse of a symmetric matrix through its eigen-decomposition. */
export function pinvSym(A: Float64Array, n: number, opts: PinvOptions = {}): SymPinv {
  const eig = symEig(A, n);
  const kept = keptEigenvalues(eig.values, n, opts);
  const pinv = new Float64Array(n * n);
  for (const j of kept) {
    const inv = 1 / eig.values[j]!;
    for (let r = 0; r < n; r++) {
      const vr = eig.vectors[r * n + j]! * inv;
      if (vr === 0) continue;
      for (let c = 0; c < n; c++) pinv[r * n + c]! += vr * eig.vectors[c * n + j]!;
    }
  }
  return { pinv, rank: kept.length, eig, kept };
}

export function trace(A: Float64Array, n: number): number {
  let t = 0;
  for (let i = 0; i < n; i++) t += A[i * n + i]!;
  return t;
}

/** A B for small row-major float64 matrices, A [m,k], B [k,n]. Not for N·d² work. */
export function matMul(A: Float64Array, B: Float64Array, m: number, k: number, n: number): Float64Array {
  if (A.length !== m * k || B.length !== k * n) throw new Error('matMul: shape mismatch');
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const a = A[i * k + p]!;
      if (a === 0) continue;
      const bo = p * n;
      const co = i * n;
      for (let j = 0; j < n; j++) C[co + j]! += a * B[bo + j]!;
    }
  }
  return C;
}

export function transpose(A: Float64Array, m: number, n: number): Float64Array {
  const T = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) T[j * m + i] = A[i * n + j]!;
  return T;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>, n = a.length, ao = 0, bo = 0): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}

/** Euclidean norm with scaling, so huge or tiny entries neither overflow nor underflow. */
export function norm2(a: ArrayLike<number>, n = a.length, ao = 0): number {
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(a[ao + i]!));
  if (scale === 0 || !Number.isFinite(scale)) return scale;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const v = a[ao + i]! / scale;
    s += v * v;
  }
  return scale * Math.sqrt(s);
}

/** All eigenvalues (descending) of a symmetric n×n matrix; only the lower triangle is read. */
export function symEigenvalues(A: Float64Array, n: number): Float64Array {
  if (A.length !== n * n) throw new Error(`symEigenvalues: ${A.length} values for ${n}×${n}`);
  const { d, e } = tridiagonalize(new Float64Array(A), n, false);
  tqli(d, e, n, null);
  return d.sort().reverse();
}

/**
 * The k largest eigenpairs of a symmetric n×n matrix (lower triangle read): the Householder
 * tridiagonalisation without accumulating Q, eigenvalues by implicit QL, eigenvectors of the
 * tridiagonal by inverse iteration (re-orthogonalised within clusters of close eigenvalues, as
 * LAPACK's dstein), then back through the k·n²/2 reflector products. For k ≪ n this skips the two
 * n³ passes that full vectors cost (the Q accumulation and rotating n vectors in QL): at n = 512,
 * k = 50 it takes ~0.3 s where `symEig` takes ~1.1 s.
 */
export function symTopEig(A: Float64Array, n: number, k: number): SymEig {
  if (A.length !== n * n) throw new Error(`symTopEig: ${A.length} values for ${n}×${n}`);
  k = Math.max(0, Math.min(k, n));
  const a = new Float64Array(A);
  const H = new Float64Array(n);
  const { d, e } = tridiagonalize(a, n, false, H);
  // T: diagonal d, off-diagonal e[i] between rows i−1 and i.
  const diag = Float64Array.from(d);
  const off = Float64Array.from(e);
  const ev = Float64Array.from(d);
  const ee = Float64Array.from(e);
  tqli(ev, ee, n, null);
  ev.sort().reverse();
  let tnorm = 0;
  for (let i = 0; i < n; i++) tnorm = Math.max(tnorm, Math.abs(diag[i]!) + Math.abs(off[i]!) + (i + 1 < n ? Math.abs(off[i + 1]!) : 0));
  const values = ev.slice(0, k);
  // Eigenvectors of T as k rows of n.
  const Y = new Float64Array(k * n);
  const clusterTol = 1e-3 * tnorm;
  const tiny = Number.EPSILON * tnorm;
  let clusterStart = 0;
  for (let j = 0; j < k; j++) {
    if (tnorm === 0) {
      // T = 0: every vector is an eigenvector, and the solves below would divide by zero.
      Y[j * n + j] = 1;
      continue;
    }
    if (j > 0 && values[j - 1]! - values[j]! > clusterTol) clusterStart = j;
    // Close eigenvalues are nudged apart so each solve is well defined.
    const lambda = values[j]! - (j - clusterStart) * 10 * tiny;
    const y = Y.subarray(j * n, (j + 1) * n);
    for (let i = 0; i < n; i++) y[i] = 1 + ((i * 7919 + j * 104729) % 1000) / 2000;
    for (let it = 0; it < 4; it++) {
      tridiagonalSolveShifted(diag, off, n, lambda, y, tiny);
      for (let c = clusterStart; c < j; c++) {
        const yc = Y.subarray(c * n, (c + 1) * n);
        const s = dot(yc, y, n);
        for (let i = 0; i < n; i++) y[i]! -= s * yc[i]!;
      }
      const nr = norm2(y, n);
      if (!(nr > 0)) throw new RuntimeFailure('inverse iteration failed (input has NaN or Inf?)');
      for (let i = 0; i < n; i++) y[i]! /= nr;
    }
  }
  // x = Q y = P_{n−1}(⋯(P_1 y)), P_i = I − u_i u_iᵀ/H_i with u_i on entries 0..i−1 of row i of a.
  for (let i = 1; i < n; i++) {
    const h = H[i]!;
    if (h === 0) continue;
    const ri = i * n;
    for (let j = 0; j < k; j++) {
      const yo = j * n;
      let s = 0;
      for (let t = 0; t < i; t++) s += a[ri + t]! * Y[yo + t]!;
      const f = s / h;
      if (f === 0) continue;
      for (let t = 0; t < i; t++) Y[yo + t]! -= f * a[ri + t]!;
    }
  }
  const vectors = new Float64Array(n * k);
  for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) vectors[i * k + j] = Y[j * n + i]!;
  return { values, vectors };
}

/**
 * y ← (T − λI)⁻¹ y for the symmetric tridiagonal T (diagonal d, off-diagonal e[i] between i−1 and
 * i), by Gaussian elimination with partial pivoting; zero pivots become `tiny` (inverse iteration
 * wants the nearly singular solve).
 */
function tridiagonalSolveShifted(d: Float64Array, e: Float64Array, n: number, lambda: number, y: Float64Array, tiny: number): void {
  // Row i of U: u0[i] on the diagonal, u1[i], u2[i] above it.
  const u0 = new Float64Array(n);
  const u1 = new Float64Array(n);
  const u2 = new Float64Array(n);
  const mult = new Float64Array(n);
  const swapped = new Uint8Array(n);
  // Current row i: [a_i (diag), b_i (super)], next row: [c (sub), d_{i+1}, e_{i+2}].
  let diagI = d[0]! - lambda;
  let superI = n > 1 ? e[1]! : 0;
  let super2 = 0;
  for (let i = 0; i < n - 1; i++) {
    const sub = e[i + 1]!;
    const nextDiag = d[i + 1]! - lambda;
    const nextSuper = i + 2 < n ? e[i + 2]! : 0;
    if (Math.abs(diagI) >= Math.abs(sub)) {
      const piv = diagI === 0 ? tiny : diagI;
      const m = sub / piv;
      u0[i] = piv;
      u1[i] = superI;
      u2[i] = super2;
      mult[i] = m;
      diagI = nextDiag - m * superI;
      superI = nextSuper - m * super2;
      super2 = 0;
    } else {
      // Swap rows i and i+1.
      const m = diagI / sub;
      u0[i] = sub;
      u1[i] = nextDiag;
      u2[i] = nextSuper;
      mult[i] = m;
      swapped[i] = 1;
      const nd = superI - m * nextDiag;
      const ns = super2 - m * nextSuper;
      diagI = nd;
      superI = ns;
      super2 = 0;
    }
  }
  u0[n - 1] = diagI === 0 ? tiny : diagI;
  // Forward: apply the row operations to y.
  for (let i = 0; i < n - 1; i++) {
    if (swapped[i]) {
      const t = y[i]!;
      y[i] = y[i + 1]!;
      y[i + 1] = t - mult[i]! * y[i + 1]!;
    } else {
      y[i + 1]! -= mult[i]! * y[i]!;
    }
  }
  // Back substitution.
  for (let i = n - 1; i >= 0; i--) {
    let v = y[i]!;
    if (i + 1 < n) v -= u1[i]! * y[i + 1]!;
    if (i + 2 < n) v -= u2[i]! * y[i + 2]!;
    const p = u0[i]! === 0 ? tiny : u0[i]!;
    y[i] = v / p;
  }
}

/**
 * Householder reduction of a symmetric matrix (lower triangle read, overwritten) to tridiagonal
 * form: diagonal d, sub-diagonal e[1..n−1]. With `vectors`, z returns the orthogonal Q with
 * QᵀAQ tridiagonal. The symmetric product A·u reads the lower triangle row by row; the
 * Householder vectors scaled by 1/H are parked in the unused upper triangle for the
 * accumulation pass.
 */
function tridiagonalize(a: Float64Array, n: number, vectors: boolean, hOut?: Float64Array): { d: Float64Array; e: Float64Array; z: Float64Array } {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const p = new Float64Array(n);
  for (let i = n - 1; i > 0; i--) {
    const l = i - 1;
    const ri = i * n;
    let h = 0;
    if (l > 0) {
      let scale = 0;
      for (let k = 0; k <= l; k++) scale += Math.abs(a[ri + k]!);
      if (scale === 0) {
        e[i] = a[ri + l]!;
      } else {
        for (let k = 0; k <= l; k++) {
          const v = a[ri + k]! / scale;
          a[ri + k] = v;
          h += v * v;
        }
        let f = a[ri + l]!;
        const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        a[ri + l] = f - g;
        p.fill(0, 0, l + 1);
        for (let j = 0; j <= l; j++) {
          const rj = j * n;
          const uj = a[ri + j]!;
          if (vectors) a[rj + i] = uj / h;
          let s = 0;
          for (let k = 0; k < j; k++) {
            const ajk = a[rj + k]!;
            s += ajk * a[ri + k]!;
            p[k]! += ajk * uj;
          }
          p[j]! += s + a[rj + j]! * uj;
        }
        f = 0;
        for (let j = 0; j <= l; j++) {
          p[j]! /= h;
          f += p[j]! * a[ri + j]!;
        }
        const hh = f / (h + h);
        for (let j = 0; j <= l; j++) p[j]! -= hh * a[ri + j]!;
        for (let j = 0; j <= l; j++) {
          const fj = a[ri + j]!;
          const gj = p[j]!;
          const rj = j * n;
          for (let k = 0; k <= j; k++) a[rj + k]! -= fj * p[k]! + gj * a[ri + k]!;
        }
      }
    } else {
      e[i] = a[ri + l]!;
    }
    d[i] = h;
  }
  if (!vectors) {
    // Row i of `a` still holds u_i (entries 0..i−1) and d[i] its H_i: the reflectors, for
    // callers that back-transform a few vectors themselves.
    if (hOut) hOut.set(d);
    for (let i = 0; i < n; i++) d[i] = a[i * n + i]!;
    return { d, e, z: a };
  }
  // Accumulate Q in place: for step i, Q[0..i)[0..i) ← Q − (Q u/H)… as g = uᵀQ, Q −= (u/H) g.
  const g = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    if (d[i] !== 0) {
      g.fill(0, 0, i);
      for (let k = 0; k < i; k++) {
        const uk = a[ri + k]!;
        if (uk === 0) continue;
        const rk = k * n;
        for (let j = 0; j < i; j++) g[j]! += uk * a[rk + j]!;
      }
      for (let k = 0; k < i; k++) {
        const rk = k * n;
        const w = a[rk + i]!;
        if (w === 0) continue;
        for (let j = 0; j < i; j++) a[rk + j]! -= g[j]! * w;
      }
    }
    d[i] = a[ri + i]!;
    a[ri + i] = 1;
    for (let j = 0; j < i; j++) {
      a[j * n + i] = 0;
      a[ri + j] = 0;
    }
  }
  return { d, e, z: a };
}

/**
 * Implicit QL on a symmetric tridiagonal matrix (diagonal d, sub-diagonal e[1..n−1]); d ←
 * eigenvalues, and when zt is given (rows = the current basis vectors) it is rotated along, so
 * that row c of zt ends as the eigenvector of d[c].
 */
function tqli(d: Float64Array, e: Float64Array, n: number, zt: Float64Array | null): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  if (n > 0) e[n - 1] = 0;
  // ‖T‖ (max row sum), for the deflation test below.
  let tnorm = 0;
  for (let i = 0; i < n; i++) tnorm = Math.max(tnorm, Math.abs(d[i]!) + Math.abs(e[i]!) + (i > 0 ? Math.abs(e[i - 1]!) : 0));
  if (!Number.isFinite(tnorm)) throw new RuntimeFailure('symmetric eigenvalue problem has NaN or Inf entries');
  const normTol = Number.EPSILON * tnorm;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    let m: number;
    do {
      // An off-diagonal entry is zero when it is negligible beside its neighbours (Numerical
      // Recipes' test) or beside ‖T‖ itself (LAPACK's backward-stable split, as in dsteqr's
      // scaled test): setting it to 0 moves any eigenvalue by at most ε‖T‖, the rounding already
      // in T. The neighbour-only test never passes inside a block of near-zero diagonal entries
      // (dead ReLU units give such blocks of rounding noise), and QL then fails to converge.
      for (m = l; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        const em = Math.abs(e[m]!);
        if (em <= Number.EPSILON * dd || em <= normTol) break;
      }
      if (m !== l) {
        if (iter++ === 60) throw new RuntimeFailure('symmetric eigenvalue iteration did not converge after 60 sweeps');
        let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
        let r = Math.hypot(g, 1);
        g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)));
        let s = 1;
        let c = 1;
        let p = 0;
        let underflow = false;
        for (let i = m - 1; i >= l; i--) {
          const f = s * e[i]!;
          const b = c * e[i]!;
          r = Math.hypot(f, g);
          e[i + 1] = r;
          if (r === 0) {
            d[i + 1]! -= p;
            e[m] = 0;
            underflow = true;
            break;
          }
          s = f / r;
          c = g / r;
          g = d[i + 1]! - p;
          r = (d[i]! - g) * s + 2 * c * b;
          p = s * r;
          d[i + 1] = g + p;
          g = c * r - b;
          if (zt) {
            const r0 = i * n;
            const r1 = r0 + n;
            for (let k = 0; k < n; k++) {
              const zf = zt[r1 + k]!;
              const zi = zt[r0 + k]!;
              zt[r1 + k] = s * zi + c * zf;
              zt[r0 + k] = c * zi - s * zf;
            }
          }
        }
        if (underflow) continue;
        d[l]! -= p;
        e[l] = g;
        e[m] = 0;
      }
    } while (m !== l);
  }
}

/**
 * Singular values (descending, min(n,d) of them) of X [n, d] from the eigenvalues of the
 * smaller Gram (XᵀX or XXᵀ), formed by onnxruntime. Float64 input keeps small singular values
 * meaningful down to ~1e-8·σ_max; a float32 Gram only resolves them down to ~3e-4·σ_max.
 */
export async function singularValues(X: FloatArray, n: number, d: number): Promise<Float64Array> {
  const m = Math.min(n, d);
  if (m === 0) return new Float64Array(0);
  const G = d <= n ? await gram(X, n, d) : await outerGram(X, n, d);
  const ev = symEigenvalues(G, m);
  const s = new Float64Array(m);
  for (let i = 0; i < m; i++) s[i] = Math.sqrt(Math.max(0, ev[i]!));
  return s;
}
