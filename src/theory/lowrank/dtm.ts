/**
 * Low-rank structure and the Bayes action (docs/theory.md).
 *
 * RECONSTRUCTED, not transcribed: Shisher, Ornee, Sun, "A Local Geometric Interpretation of
 * Feature Extraction in Deep Feedforward Neural Networks" (arXiv 2202.04632) is theory only and
 * we worked from its abstract and its lineage (Huang, Xu, Zheng, Wornell: the divergence
 * transition matrix, local information geometry, universal features). In a local region
 * (posteriors P(y|x) close to the prior P(y)) the log-loss-optimal last-layer weights and
 * penultimate features form the rank-k truncated SVD of
 *
 *   B̃(x,y) = (P(x,y) − P(x)P(y)) / √(P(x)P(y))            (softmax / log-loss)
 *   M(x,·) = √P(x) (E[Y|x] − E[Y])                           (MMSE)
 *
 * with the class side of the factorisation being the P(y)-centred, √P(y)-scaled head weights
 * ψ(y) = √P(y) (w_y − Σ_y' P(y') w_y').
 *
 * Everything class-side goes through the K×K Gram B̃ᵀB̃ = Σ_x P(x) (q_x − P_Y)(q_x − P_Y)ᵀ ⊘
 * √(P(y)P(y')) (q_x = P(·|x)), accumulated one x at a time, so nothing scales with |X|. Its
 * singular values are the Hirschfeld–Gebelein–Rényi correlations of (X, Y) (σ_1 ≤ 1 is the
 * maximal correlation) and Σσ_i² = χ²(P_XY ‖ P_X P_Y).
 *
 * This file holds the maths (the divergence transition matrix, its spectrum through the K×K Gram,
 * the scaled head and the subspace comparison); synthetic.ts the seeded local-regime generator and
 * the bottleneck fit; model.ts the real-model mode. The small K×K algebra uses symEig from
 * linalg/dense.
 */
import { UsageError, RuntimeFailure } from '../../errors.js';
import { symEig } from '../../linalg/dense.js';
import { dot } from '../../linalg/kernels.js';
import { orthonormalColumns, principalAngles } from '../../metrics/baseline/subspaces.js';

export const LOWRANK_SOURCE =
  'reconstructed from the abstract of Shisher, Ornee, Sun (arXiv 2202.04632) and the Huang–Xu–Zheng–Wornell lineage (divergence transition matrix, local information geometry); docs/theory.md#theory-lowrank';

export const LOWRANK_DEFINITION =
  'B̃(x,y) = (P(x,y) − P(x)P(y))/√(P(x)P(y)); locality = σ_1(B̃) (maximal correlation, ≤ 1) and Σσ_i² (= χ²(P_XY‖P_XP_Y)); class-side singular vectors from the K×K Gram B̃ᵀB̃; ' +
  'head H(y,:) = √P(y)(W_y − Σ_y′P(y′)W_y′); principal angles (degrees) between the top-k left singular subspace of H (its column space when rank H = k) and the top-k right singular vectors of B̃; ' +
  'captured energy = ‖B̃Π_S‖_F²/‖B̃‖_F² for the head subspace S (at most Σ_{i≤k}σ_i²/Σσ_i², the optimal share; efficiency = captured/optimal); MMSE: rows √P(x)(E[Y|x] − E[Y])';

// ---------------------------------------------------------------------------------------------
// Joint distributions and the divergence transition matrix

/** A joint P(x,y) as P(x) (length nx) and posteriors P(y|x) (nx×K row-major). */
export interface JointDistribution {
  px: Float64Array;
  posterior: Float64Array;
  nx: number;
  K: number;
}

export function checkJoint(j: JointDistribution): void {
  const { px, posterior, nx, K } = j;
  if (!Number.isInteger(nx) || nx < 1 || !Number.isInteger(K) || K < 2) throw new UsageError(`a joint distribution needs |X| ≥ 1 and K ≥ 2 (got |X| = ${nx}, K = ${K})`);
  if (px.length !== nx || posterior.length !== nx * K) throw new UsageError(`joint distribution: ${px.length} P(x) values and ${posterior.length} posteriors for |X| = ${nx}, K = ${K}`);
  let s = 0;
  for (const p of px) {
    if (!(p >= 0) || !Number.isFinite(p)) throw new UsageError(`P(x) must be finite and ≥ 0 (got ${p})`);
    s += p;
  }
  if (Math.abs(s - 1) > 1e-6) throw new UsageError(`P(x) must sum to 1 (sums to ${s})`);
}

/** P(y) = Σ_x P(x) P(y|x). */
export function classMarginal(j: JointDistribution): Float64Array {
  const py = new Float64Array(j.K);
  for (let x = 0; x < j.nx; x++) for (let y = 0; y < j.K; y++) py[y]! += j.px[x]! * j.posterior[x * j.K + y]!;
  return py;
}

/** The whole |X|×K matrix B̃ (row-major), for small alphabets and for checking. */
export function divergenceTransitionMatrix(j: JointDistribution): Float64Array {
  checkJoint(j);
  const py = classMarginal(j);
  const B = new Float64Array(j.nx * j.K);
  for (let x = 0; x < j.nx; x++) {
    const p = j.px[x]!;
    if (p === 0) continue;
    for (let y = 0; y < j.K; y++) {
      if (py[y] === 0) continue;
      B[x * j.K + y] = (p * j.posterior[x * j.K + y]! - p * py[y]!) / Math.sqrt(p * py[y]!);
    }
  }
  return B;
}

/**
 * Streaming accumulator for the class-side Grams: Σ P(x) q_x and Σ P(x) q_x q_xᵀ, from which
 * B̃ᵀB̃ (log-loss) and MᵀM (MMSE with one-hot Y) follow exactly. Weights default to equal
 * (P(x) = 1/N over everything added).
 */
export class PosteriorMoments {
  readonly K: number;
  private readonly sum: Float64Array;
  private readonly second: Float64Array;
  private weight = 0;
  private count = 0;
  constructor(K: number) {
    this.K = K;
    this.sum = new Float64Array(K);
    this.second = new Float64Array(K * K);
  }
  /** Adds n posterior rows (n×K); optional per-row weights (unnormalised P(x)). */
  add(q: ArrayLike<number>, n: number, weights?: ArrayLike<number>): void {
    const K = this.K;
    if (q.length !== n * K) throw new RuntimeFailure(`posterior block of ${q.length} values for ${n}×${K}`);
    for (let i = 0; i < n; i++) {
      const w = weights ? weights[i]! : 1;
      if (w === 0) continue;
      const o = i * K;
      for (let a = 0; a < K; a++) {
        const qa = q[o + a]!;
        if (!Number.isFinite(qa)) throw new RuntimeFailure(`posterior of item ${this.count + i} is not finite`);
        this.sum[a]! += w * qa;
        if (qa === 0) continue;
        const wa = w * qa;
        for (let b = 0; b <= a; b++) this.second[a * K + b]! += wa * q[o + b]!;
      }
      this.weight += w;
    }
    this.count += n;
  }
  /** Adds a whole joint distribution (weights P(x)). */
  addJoint(j: JointDistribution): this {
    this.add(j.posterior, j.nx, j.px);
    return this;
  }
  get items(): number {
    return this.count;
  }
  /** P(y). */
  marginal(): Float64Array {
    return this.sum.map((v) => v / this.weight);
  }
  /** Cov_x(q_x) = Σ P(x) q qᵀ − P_Y P_Yᵀ: the MMSE Gram MᵀM for one-hot Y. */
  covariance(): Float64Array {
    const K = this.K;
    if (!(this.weight > 0)) throw new RuntimeFailure('no posteriors were accumulated');
    const py = this.marginal();
    const C = new Float64Array(K * K);
    for (let a = 0; a < K; a++) {
      for (let b = 0; b <= a; b++) {
        const v = this.second[a * K + b]! / this.weight - py[a]! * py[b]!;
        C[a * K + b] = v;
        C[b * K + a] = v;
      }
    }
    return C;
  }
  /** B̃ᵀB̃ (K×K). */
  dtmGram(): Float64Array {
    return dtmGramFromCovariance(this.covariance(), this.marginal());
  }
}

/** B̃ᵀB̃(y,y′) = Cov(q)(y,y′)/√(P(y)P(y′)); classes with P(y) = 0 give zero rows. */
export function dtmGramFromCovariance(C: Float64Array, py: Float64Array): Float64Array {
  const K = py.length;
  const G = new Float64Array(K * K);
  for (let a = 0; a < K; a++) {
    for (let b = 0; b < K; b++) {
      const d = Math.sqrt(py[a]! * py[b]!);
      G[a * K + b] = d > 0 ? C[a * K + b]! / d : 0;
    }
  }
  return G;
}

/** Singular values and class-side singular vectors of a matrix from its K×K Gram. */
export interface ClassSpectrum {
  K: number;
  /** Descending, K of them (the last is ≈ 0 for B̃: √P(y) is always in its null space). */
  singularValues: Float64Array;
  /** K×K row-major; column i is the i-th right (class-side) singular vector. */
  vectors: Float64Array;
  /** Σσ_i² = trace of the Gram. */
  energy: number;
}

export function spectrumFromGram(G: Float64Array, K: number): ClassSpectrum {
  const { values, vectors } = symEig(G, K);
  let energy = 0;
  for (let i = 0; i < K; i++) energy += G[i * K + i]!;
  return { K, singularValues: values.map((v) => Math.sqrt(Math.max(0, v))), vectors, energy };
}

/** Spectrum of B̃ for a joint distribution (via the K×K Gram). */
export function dtmSpectrum(j: JointDistribution): ClassSpectrum & { py: Float64Array } {
  checkJoint(j);
  const m = new PosteriorMoments(j.K);
  m.add(j.posterior, j.nx, j.px);
  return { ...spectrumFromGram(m.dtmGram(), j.K), py: m.marginal() };
}

/** MMSE matrix M (|X|×m): rows √P(x)(E[Y|x] − E[Y]) for conditional means (nx×m). */
export function mmseMatrix(px: Float64Array, condMean: Float64Array, m: number): Float64Array {
  const nx = px.length;
  if (condMean.length !== nx * m) throw new UsageError(`mmseMatrix: ${condMean.length} values for ${nx}×${m}`);
  const mean = new Float64Array(m);
  for (let x = 0; x < nx; x++) for (let c = 0; c < m; c++) mean[c]! += px[x]! * condMean[x * m + c]!;
  const M = new Float64Array(nx * m);
  for (let x = 0; x < nx; x++) {
    const s = Math.sqrt(px[x]!);
    for (let c = 0; c < m; c++) M[x * m + c] = s * (condMean[x * m + c]! - mean[c]!);
  }
  return M;
}

/** Spectrum of the MMSE matrix for one-hot Y (E[Y|x] = P(·|x)): from Cov_x(q_x). */
export function mmseSpectrum(j: JointDistribution): ClassSpectrum {
  checkJoint(j);
  const m = new PosteriorMoments(j.K);
  m.add(j.posterior, j.nx, j.px);
  return spectrumFromGram(m.covariance(), j.K);
}

// ---------------------------------------------------------------------------------------------
// The head and its comparison with the spectrum

/** H (K×d): rows √P(y)(W_y − Σ_y′ P(y′) W_y′) for head weights W (K×d, row y = class y). */
export function scaledHead(W: Float64Array, K: number, d: number, py: Float64Array): Float64Array {
  if (W.length !== K * d || py.length !== K) throw new UsageError(`scaledHead: ${W.length} weights for ${K}×${d} and ${py.length} class probabilities`);
  const mean = new Float64Array(d);
  for (let y = 0; y < K; y++) for (let c = 0; c < d; c++) mean[c]! += py[y]! * W[y * d + c]!;
  const H = new Float64Array(K * d);
  for (let y = 0; y < K; y++) {
    const s = Math.sqrt(py[y]!);
    for (let c = 0; c < d; c++) H[y * d + c] = s * (W[y * d + c]! - mean[c]!);
  }
  return H;
}

/** H C Hᵀ (K×K) for H K×d and C d×d (identity when C is omitted). */
export function headGram(H: Float64Array, K: number, d: number, C?: Float64Array): Float64Array {
  let HC = H;
  if (C) {
    if (C.length !== d * d) throw new RuntimeFailure(`headGram: feature covariance of ${C.length} values for d = ${d}`);
    HC = new Float64Array(K * d);
    for (let y = 0; y < K; y++) {
      for (let a = 0; a < d; a++) {
        const h = H[y * d + a]!;
        if (h === 0) continue;
        for (let b = 0; b < d; b++) HC[y * d + b]! += h * C[a * d + b]!;
      }
    }
  }
  const G = new Float64Array(K * K);
  for (let a = 0; a < K; a++) {
    for (let b = 0; b <= a; b++) {
      const s = dot(HC, H, d, a * d, b * d);
      G[a * K + b] = s;
      G[b * K + a] = s;
    }
  }
  return G;
}

/** Columns [0, k) of a K×K row-major matrix, as K×k. */
export function leading(V: Float64Array, K: number, k: number): Float64Array {
  const out = new Float64Array(K * k);
  for (let i = 0; i < K; i++) for (let j = 0; j < k; j++) out[i * k + j] = V[i * K + j]!;
  return out;
}

/** Principal angles in degrees (ascending) between the column spaces of A (n×ka) and B (n×kb); columns need not be orthonormal. */
export function anglesBetweenDeg(A: Float64Array, B: Float64Array, n: number, ka: number, kb: number): number[] {
  const Qa = orthonormalColumns(A, n, ka);
  const Qb = orthonormalColumns(B, n, kb);
  return Array.from(principalAngles(Qa, Qb, n, ka, kb), (t) => (t * 180) / Math.PI);
}

export interface SubspaceComparison {
  k: number;
  /** Principal angles in degrees, ascending. */
  anglesDeg: number[];
  maxAngleDeg: number;
  /** ‖B̃Π_S‖_F²/‖B̃‖_F² for the head's k-dim subspace S. */
  capturedEnergy: number;
  /** Σ_{i≤k}σ_i²/Σσ_i²: the most any k-dim subspace captures. */
  optimalEnergy: number;
  /** capturedEnergy / optimalEnergy (1 = the head spans the optimal subspace). */
  efficiency: number;
}

/**
 * Compares the top-k eigen-directions of a K×K head Gram (H Hᵀ, or H C Hᵀ whitened by the
 * feature covariance) with the top-k class-side singular vectors of a spectrum.
 */
export function compareHeadSubspace(spectrum: ClassSpectrum, headG: Float64Array, k: number): SubspaceComparison {
  const K = spectrum.K;
  if (!Number.isInteger(k) || k < 1 || k > K) throw new UsageError(`subspace dimension k must be in 1..${K} (got ${k})`);
  const he = symEig(headG, K);
  const S = leading(he.vectors, K, k);
  const U = leading(spectrum.vectors, K, k);
  const angles = Array.from(principalAngles(S, U, K, k, k), (t) => (t * 180) / Math.PI);
  // captured = Σ_j s_jᵀ (B̃ᵀB̃) s_j / trace, with B̃ᵀB̃ = V diag(σ²) Vᵀ.
  let captured = 0;
  for (let i = 0; i < K; i++) {
    const s2 = spectrum.singularValues[i]! ** 2;
    if (s2 === 0) continue;
    for (let j = 0; j < k; j++) {
      let c = 0;
      for (let r = 0; r < K; r++) c += spectrum.vectors[r * K + i]! * S[r * k + j]!;
      captured += s2 * c * c;
    }
  }
  let top = 0;
  let all = 0;
  spectrum.singularValues.forEach((s, i) => {
    all += s * s;
    if (i < k) top += s * s;
  });
  const capturedEnergy = all > 0 ? captured / all : NaN;
  const optimalEnergy = all > 0 ? top / all : NaN;
  return { k, anglesDeg: angles, maxAngleDeg: Math.max(...angles), capturedEnergy, optimalEnergy, efficiency: capturedEnergy / optimalEnergy };
}

/** Numerical rank of a PSD K×K Gram (eigenvalues above 1e-10 of the largest). */
export function gramRank(G: Float64Array, K: number): number {
  const { values } = symEig(G, K);
  const top = Math.max(0, values[0]!);
  return values.filter((v) => v > 1e-10 * top && top > 0).length;
}

