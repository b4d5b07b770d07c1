/**
 * Union-of-subspaces data (docs/theory.md#theory-phase): K classes, class k on span(U_k) with U_k ∈ R^{d×r}
 * orthonormal; x = U_k c, c ~ N(0, I_r), plus optional isotropic noise σ·N(0, I_d). The
 * subspaces are drawn uniformly (QR of a Gaussian matrix) or, for a pair, with every principal
 * angle equal to θ: (U_2)_j = cos θ (U_1)_j + sin θ u'_j with u'_j orthonormal and ⟂ U_1.
 *
 * Bases are d×r row-major Float64Arrays (column j is the j-th basis vector).
 */
import { UsageError, RuntimeFailure } from '../../errors.js';
import { symEigenvalues } from '../../linalg/dense.js';
import { Rng } from '../../util/rng.js';
import { deriveSeed, STREAM } from '../../util/seed.js';

/**
 * Orthonormal basis of the columns of A (d×m row-major), by modified Gram–Schmidt applied
 * twice ("twice is enough": orthogonal to working precision even for nearly dependent input).
 * This is the Q of a thin QR; columns keep their order.
 */
export function orthonormalColumns(A: Float64Array, d: number, m: number): Float64Array {
  if (A.length !== d * m) throw new RuntimeFailure(`orthonormalColumns: ${A.length} values for ${d}×${m}`);
  if (m > d) throw new RuntimeFailure(`orthonormalColumns: ${m} columns cannot be orthonormal in R^${d}`);
  const Q = new Float64Array(A);
  const col = (j: number) => {
    let s = 0;
    for (let i = 0; i < d; i++) s += Q[i * m + j]! * Q[i * m + j]!;
    return Math.sqrt(s);
  };
  for (let j = 0; j < m; j++) {
    const before = col(j);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += Q[i * m + k]! * Q[i * m + j]!;
        for (let i = 0; i < d; i++) Q[i * m + j]! -= s * Q[i * m + k]!;
      }
    }
    const n = col(j);
    if (!(n > 1e-10 * before) || !(n > 0)) throw new RuntimeFailure(`orthonormalColumns: column ${j} is (numerically) in the span of the previous ones`);
    for (let i = 0; i < d; i++) Q[i * m + j]! /= n;
  }
  return Q;
}

/** d×m matrix of i.i.d. N(0,1), row-major. */
export function gaussianMatrix(rows: number, cols: number, rng: Rng): Float64Array {
  const G = new Float64Array(rows * cols);
  for (let i = 0; i < G.length; i++) G[i] = rng.normal();
  return G;
}

/** A uniformly random r-dimensional subspace of R^d (Haar measure), as a d×r orthonormal basis. */
export function randomSubspace(d: number, r: number, rng: Rng): Float64Array {
  return orthonormalColumns(gaussianMatrix(d, r, rng), d, r);
}

/** Columns [from, from+count) of a d×m row-major matrix, as d×count. */
export function columns(A: Float64Array, d: number, m: number, from: number, count: number): Float64Array {
  const out = new Float64Array(d * count);
  for (let i = 0; i < d; i++) for (let j = 0; j < count; j++) out[i * count + j] = A[i * m + from + j]!;
  return out;
}

/**
 * Two r-dimensional subspaces whose r principal angles all equal θ (radians, 0 ≤ θ ≤ π/2):
 * U_2 = cos θ U_1 + sin θ U', with [U_1 U'] orthonormal (needs 2r ≤ d).
 */
export function subspacePairAtAngle(d: number, r: number, theta: number, rng: Rng): [Float64Array, Float64Array] {
  if (2 * r > d) throw new UsageError(`a pair at a prescribed angle needs 2r ≤ d (r=${r}, d=${d})`);
  if (!(theta >= 0 && theta <= Math.PI / 2)) throw new UsageError(`principal angle must lie in [0°, 90°], got ${Number(((theta * 180) / Math.PI).toPrecision(10))}°`);
  const Q = randomSubspace(d, 2 * r, rng);
  const U1 = columns(Q, d, 2 * r, 0, r);
  const Up = columns(Q, d, 2 * r, r, r);
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const U2 = new Float64Array(d * r);
  for (let i = 0; i < U2.length; i++) U2[i] = c * U1[i]! + s * Up[i]!;
  return [U1, U2];
}

/** AᵀB for A d×p, B d×q (row-major): p×q. */
function crossProduct(A: Float64Array, B: Float64Array, d: number, p: number, q: number): Float64Array {
  const M = new Float64Array(p * q);
  for (let i = 0; i < d; i++) {
    for (let a = 0; a < p; a++) {
      const v = A[i * p + a]!;
      if (v === 0) continue;
      for (let b = 0; b < q; b++) M[a * q + b]! += v * B[i * q + b]!;
    }
  }
  return M;
}

/** Singular values (descending) of a p×q matrix from its smaller Gram. */
function smallSingularValues(M: Float64Array, p: number, q: number): Float64Array {
  const m = Math.min(p, q);
  const G = new Float64Array(m * m);
  if (q <= p) {
    for (let a = 0; a < p; a++) for (let i = 0; i < q; i++) for (let j = 0; j < q; j++) G[i * q + j]! += M[a * q + i]! * M[a * q + j]!;
  } else {
    for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) for (let b = 0; b < q; b++) G[i * p + j]! += M[i * q + b]! * M[j * q + b]!;
  }
  const ev = symEigenvalues(G, m);
  return ev.map((v) => Math.sqrt(Math.max(0, v)));
}

/**
 * Principal angles (radians, ascending) between span(U1) and span(U2), both orthonormal d×r1,
 * d×r2; min(r1, r2) of them. cos θ_j = σ_j(U1ᵀU2) is ill-conditioned for small angles, so those
 * come from sin θ_j = σ(U2 − U1 U1ᵀU2) instead (Björck–Golub); each angle uses whichever of the
 * two is below √½.
 */
export function principalAngles(U1: Float64Array, U2: Float64Array, d: number, r1: number, r2: number): Float64Array {
  if (r1 > r2) return principalAngles(U2, U1, d, r2, r1);
  const M = crossProduct(U1, U2, d, r1, r2); // r1×r2
  const cos = smallSingularValues(M, r1, r2); // descending: smallest angle first
  // R = U1 − U2(U2ᵀU1): the part of U1 orthogonal to span(U2).
  const Mt = new Float64Array(r2 * r1);
  for (let a = 0; a < r1; a++) for (let b = 0; b < r2; b++) Mt[b * r1 + a] = M[a * r2 + b]!;
  const R = new Float64Array(d * r1);
  for (let i = 0; i < d; i++) {
    for (let a = 0; a < r1; a++) {
      let s = U1[i * r1 + a]!;
      for (let b = 0; b < r2; b++) s -= U2[i * r2 + b]! * Mt[b * r1 + a]!;
      R[i * r1 + a] = s;
    }
  }
  // sin θ_j = σ_j(R), and ascending sines pair with descending cosines.
  const sin = smallSingularValues(R, d, r1); // min(d, r1) = r1 values, descending
  const out = new Float64Array(r1);
  for (let j = 0; j < r1; j++) {
    const c = Math.min(1, cos[j]!);
    const s = Math.min(1, sin[r1 - 1 - j]!);
    out[j] = c >= Math.SQRT1_2 ? Math.asin(s) : Math.acos(c);
  }
  return out.sort();
}

export interface UosOptions {
  /** Ambient dimension. */
  d: number;
  /** Subspace dimension (one for all classes, or one per class). */
  r: number | readonly number[];
  /** Number of classes. Default 2. */
  K?: number;
  /** Samples per class. */
  n: number;
  /** Standard deviation of isotropic Gaussian noise added to every sample. Default 0. */
  noise?: number;
  /**
   * Draw the pair (K = 2, equal r) with every principal angle equal to this (radians) instead
   * of uniformly at random.
   */
  angle?: number;
  seed: number;
}

export interface PairAngles {
  k: number;
  l: number;
  /** Principal angles in radians, ascending. */
  angles: Float64Array;
}

export interface UnionOfSubspaces {
  /** (K·n)×d row-major, class-major order (class 0's n rows first). */
  X: Float64Array;
  /** Rows. */
  n: number;
  d: number;
  K: number;
  labels: Int32Array;
  /** d×r_k orthonormal bases. */
  bases: Float64Array[];
  r: number[];
  /** Principal angles between every pair of class subspaces. */
  angles: PairAngles[];
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`${name} must be an integer ≥ ${min}, got ${v}`);
}

/** Class bases of a UoS model: uniform, or the prescribed-angle pair. */
export function uosBases(opts: Pick<UosOptions, 'd' | 'r' | 'K' | 'angle' | 'seed'>): { bases: Float64Array[]; r: number[] } {
  const K = opts.K ?? 2;
  checkInt('d', opts.d, 1);
  checkInt('K', K, 2);
  const r = typeof opts.r === 'number' ? Array.from({ length: K }, () => opts.r as number) : [...opts.r];
  if (r.length !== K) throw new UsageError(`${r.length} subspace dimensions given for ${K} classes`);
  for (const rk of r) {
    checkInt('r', rk, 1);
    if (rk > opts.d) throw new UsageError(`subspace dimension r=${rk} exceeds the ambient dimension d=${opts.d}`);
  }
  const rng = new Rng(deriveSeed(opts.seed, STREAM.subspaces));
  if (opts.angle !== undefined) {
    if (K !== 2 || r[0] !== r[1]) throw new UsageError('a prescribed principal angle needs K = 2 classes of equal dimension r');
    const [U1, U2] = subspacePairAtAngle(opts.d, r[0]!, opts.angle, rng);
    return { bases: [U1, U2], r };
  }
  return { bases: r.map((rk) => randomSubspace(opts.d, rk, rng)), r };
}

/** Every pairwise set of principal angles. */
export function pairwiseAngles(bases: readonly Float64Array[], r: readonly number[], d: number): PairAngles[] {
  const out: PairAngles[] = [];
  for (let k = 0; k < bases.length; k++) {
    for (let l = k + 1; l < bases.length; l++) out.push({ k, l, angles: principalAngles(bases[k]!, bases[l]!, d, r[k]!, r[l]!) });
  }
  return out;
}

/** Samples x = U_k c (+ noise) for every class; see UosOptions. */
export function unionOfSubspaces(opts: UosOptions): UnionOfSubspaces {
  const { d } = opts;
  checkInt('n (samples per class)', opts.n, 1);
  const noise = opts.noise ?? 0;
  if (!(noise >= 0) || !Number.isFinite(noise)) throw new UsageError(`noise must be a finite σ ≥ 0, got ${noise}`);
  const { bases, r } = uosBases(opts);
  const K = bases.length;
  const rng = new Rng(deriveSeed(opts.seed, STREAM.samples));
  const noiseRng = new Rng(deriveSeed(opts.seed, STREAM.noise));
  const N = K * opts.n;
  const X = new Float64Array(N * d);
  const labels = new Int32Array(N);
  for (let k = 0; k < K; k++) {
    const U = bases[k]!;
    const rk = r[k]!;
    const c = new Float64Array(rk);
    for (let s = 0; s < opts.n; s++) {
      const row = k * opts.n + s;
      labels[row] = k;
      for (let j = 0; j < rk; j++) c[j] = rng.normal();
      const o = row * d;
      for (let i = 0; i < d; i++) {
        let v = 0;
        for (let j = 0; j < rk; j++) v += U[i * rk + j]! * c[j]!;
        X[o + i] = noise > 0 ? v + noise * noiseRng.normal() : v;
      }
    }
  }
  return { X, n: N, d, K, labels, bases, r, angles: pairwiseAngles(bases, r, d) };
}
