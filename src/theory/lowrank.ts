/**
 * Low-rank structure and the Bayes action (SCIENCE.md §6).
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
 * Also here: a seeded synthetic local-regime generator with an exactly known SVD, a bottleneck
 * model (one-hot x → k-dim feature → softmax head) fitted on the exact expected log-loss, and
 * the real-model mode that reads a classifier head (last Gemm/MatMul/Dense before the output)
 * from an ONNX or TF.js layers model and measures it on a dataset against a reference model's
 * posteriors.
 *
 * Written by hand: L-BFGS (≈60 lines; ml-matrix has no optimiser, and plain gradient descent on
 * a factorised O(ε) target needs step sizes ∝ 1/ε to converge) and the small K×K algebra (done
 * with symEig from linalg/dense).
 */
import type { Split } from '../data/registry.js';
import { RuntimeFailure, UsageError } from '../errors.js';
import { symEig } from '../linalg/dense.js';
import { gram } from '../linalg/ort-ops.js';
import { outputLayer } from '../runtime/select.js';
import { readClassifierHead } from '../runtime/classifier-head.js';
import { valuesPerItem, type ModelRunner } from '../runtime/types.js';
import { Rng } from '../util/rng.js';
import { deriveSeed } from '../util/seed.js';
import { orthonormalColumns, principalAngles } from '../metrics/baseline/subspaces.js';

export const LOWRANK_SOURCE =
  'reconstructed from the abstract of Shisher, Ornee, Sun (arXiv 2202.04632) and the Huang–Xu–Zheng–Wornell lineage (divergence transition matrix, local information geometry); SCIENCE.md §6';

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

function checkJoint(j: JointDistribution): void {
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
      let s = 0;
      for (let c = 0; c < d; c++) s += HC[a * d + c]! * H[b * d + c]!;
      G[a * K + b] = s;
      G[b * K + a] = s;
    }
  }
  return G;
}

/** Columns [0, k) of a K×K row-major matrix, as K×k. */
function leading(V: Float64Array, K: number, k: number): Float64Array {
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

// ---------------------------------------------------------------------------------------------
// Synthetic local regime

export interface LocalJointOptions {
  /** |X|. */
  symbols: number;
  /** K. */
  classes: number;
  /** Rank of the perturbation (default min(K − 1, |X| − 1)). */
  rank?: number;
  /** Dependence ε ∈ (0, 1): P(y|x) = P(y) + ε·Δ(x,y) with min_x P(y|x) ≥ (1 − ε)P(y). */
  epsilon: number;
  /** Ratio between consecutive singular values of the perturbation (default 0.6). */
  decay?: number;
  seed: number;
}

export interface LocalJoint extends JointDistribution {
  py: Float64Array;
  rank: number;
  /** Exact singular values of B̃ (descending, `rank` of them). */
  singularValues: Float64Array;
  /** K×rank: the exact class-side singular vectors of B̃. */
  classVectors: Float64Array;
}

function positiveWeights(n: number, spread: number, rng: Rng): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.exp(spread * rng.normal());
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

/** r orthonormal vectors in R^n orthogonal to the unit vector u (n×r row-major). */
function orthonormalComplement(u: Float64Array, n: number, r: number, rng: Rng): Float64Array {
  const A = new Float64Array(n * (r + 1));
  for (let i = 0; i < n; i++) {
    A[i * (r + 1)] = u[i]!;
    for (let j = 1; j <= r; j++) A[i * (r + 1) + j] = rng.normal();
  }
  const Q = orthonormalColumns(A, n, r + 1);
  const out = new Float64Array(n * r);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) out[i * r + j] = Q[i * (r + 1) + j + 1]!;
  return out;
}

/**
 * Seeded joint distribution in the local regime with an exactly known B̃: P(x), P(y) drawn
 * (log-normal weights), then B̃ = (ε/c) Σ_i s_i φ_i ψ_iᵀ with φ_i ⟂ √P(x), ψ_i ⟂ √P(y)
 * orthonormal, s_i = decay^(i−1), and c = max |Σ s_i φ_i ψ_i| / √(P(x)P(y)), so that
 * P(y|x) = P(y) + √(P(y)/P(x))·B̃(x,y) stays within [(1 − ε)P(y), (1 + ε)P(y)]. The marginals are
 * exactly P(x), P(y) for every ε, and the same seed gives the same directions for every ε.
 */
export function localJoint(opts: LocalJointOptions): LocalJoint {
  const nx = opts.symbols;
  const K = opts.classes;
  if (!Number.isInteger(nx) || nx < 2) throw new UsageError(`--symbols must be an integer ≥ 2 (got ${nx})`);
  if (!Number.isInteger(K) || K < 2) throw new UsageError(`--classes must be an integer ≥ 2 (got ${K})`);
  const maxRank = Math.min(K - 1, nx - 1);
  const r = opts.rank ?? maxRank;
  if (!Number.isInteger(r) || r < 1 || r > maxRank) throw new UsageError(`perturbation rank must be in 1..min(K − 1, |X| − 1) = ${maxRank} (got ${r})`);
  const eps = opts.epsilon;
  if (!(eps > 0 && eps < 1)) throw new UsageError(`dependence ε must lie in (0, 1) (got ${eps}); P(y|x) ≥ (1 − ε)P(y) keeps posteriors valid`);
  const decay = opts.decay ?? 0.6;
  if (!(decay > 0 && decay <= 1)) throw new UsageError(`decay must lie in (0, 1] (got ${decay})`);
  const rng = new Rng(deriveSeed(opts.seed, 0x10a, nx, K, r));
  const px = positiveWeights(nx, 0.5, rng);
  const py = positiveWeights(K, 0.3, rng);
  const phi = orthonormalComplement(px.map(Math.sqrt), nx, r, rng);
  const psi = orthonormalComplement(py.map(Math.sqrt), K, r, rng);
  const s = Float64Array.from({ length: r }, (_, i) => decay ** i);
  const A = new Float64Array(nx * K);
  let c = 0;
  for (let x = 0; x < nx; x++) {
    for (let y = 0; y < K; y++) {
      let v = 0;
      for (let i = 0; i < r; i++) v += s[i]! * phi[x * r + i]! * psi[y * r + i]!;
      A[x * K + y] = v;
      c = Math.max(c, Math.abs(v) / Math.sqrt(px[x]! * py[y]!));
    }
  }
  const scale = eps / c;
  const posterior = new Float64Array(nx * K);
  for (let x = 0; x < nx; x++) {
    let sum = 0;
    for (let y = 0; y < K; y++) {
      const q = py[y]! + Math.sqrt(py[y]! / px[x]!) * scale * A[x * K + y]!;
      posterior[x * K + y] = q;
      sum += q;
    }
    // Σ_y q = 1 holds exactly in exact arithmetic; remove the rounding.
    for (let y = 0; y < K; y++) posterior[x * K + y]! /= sum;
  }
  return { px, posterior, nx, K, py, rank: r, singularValues: s.map((v) => v * scale), classVectors: psi };
}

// ---------------------------------------------------------------------------------------------
// Bottleneck model on the exact expected log-loss

export interface BottleneckFit {
  k: number;
  /** |X|×k features f(x). */
  F: Float64Array;
  /** K×k head weights (row y = w_y). */
  W: Float64Array;
  b: Float64Array;
  /** Expected KL(P(·|x) ‖ model) under P(x) at the end (log-loss minus H(Y|X)). */
  kl: number;
  iterations: number;
  /** ‖∇‖∞ in the natural coordinates (ξ = √P(x)f, ψ = √P(y)w, scaled bias). */
  gradNorm: number;
  /** ‖∇‖∞ ≤ 1e-5·σ_1(B̃). */
  converged: boolean;
}

/** KL(q ‖ softmax(z)) summed with weights P(x), and its gradient, for θ = [F (nx×k), W (K×k), b (K)]. */
function bottleneckLoss(j: JointDistribution, k: number, theta: Float64Array, grad: Float64Array): number {
  const { nx, K, px, posterior } = j;
  const F = theta.subarray(0, nx * k);
  const W = theta.subarray(nx * k, nx * k + K * k);
  const b = theta.subarray(nx * k + K * k);
  grad.fill(0);
  const gF = grad.subarray(0, nx * k);
  const gW = grad.subarray(nx * k, nx * k + K * k);
  const gb = grad.subarray(nx * k + K * k);
  const z = new Float64Array(K);
  const g = new Float64Array(K);
  let loss = 0;
  for (let x = 0; x < nx; x++) {
    let zmax = -Infinity;
    for (let y = 0; y < K; y++) {
      let v = b[y]!;
      for (let c = 0; c < k; c++) v += F[x * k + c]! * W[y * k + c]!;
      z[y] = v;
      zmax = Math.max(zmax, v);
    }
    let se = 0;
    for (let y = 0; y < K; y++) se += Math.exp(z[y]! - zmax);
    const lse = zmax + Math.log(se);
    const p = px[x]!;
    for (let y = 0; y < K; y++) {
      const q = posterior[x * K + y]!;
      const sy = Math.exp(z[y]! - lse);
      // q·log(q/s) through log1p: near the optimum q ≈ s and log q − log s would cancel.
      if (q > 0) loss += p * q * Math.log1p((q - sy) / sy);
      g[y] = p * (sy - q);
    }
    for (let y = 0; y < K; y++) {
      const gy = g[y]!;
      gb[y]! += gy;
      for (let c = 0; c < k; c++) {
        gF[x * k + c]! += gy * W[y * k + c]!;
        gW[y * k + c]! += gy * F[x * k + c]!;
      }
    }
  }
  return loss;
}

function vdot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  iterations: number;
  gradNorm: number;
  converged: boolean;
}

/**
 * Limited-memory BFGS with a backtracking (Armijo) line search. Stops when ‖∇f‖∞ ≤ gtol, when
 * no step decreases f (rounding floor), or after maxIter iterations.
 */
export function lbfgs(fg: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, opts: { maxIter?: number; gtol?: number; memory?: number } = {}): LbfgsResult {
  const n = x0.length;
  const maxIter = opts.maxIter ?? 5000;
  const gtol = opts.gtol ?? 1e-12;
  const m = opts.memory ?? 10;
  const x = new Float64Array(x0);
  const g = new Float64Array(n);
  let f = fg(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const d = new Float64Array(n);
  const xn = new Float64Array(n);
  const gn = new Float64Array(n);
  const alpha = new Array<number>(m).fill(0);
  const infNorm = (v: Float64Array) => v.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  let it = 0;
  let converged = infNorm(g) <= gtol;
  for (; it < maxIter && !converged; it++) {
    // Two-loop recursion: d = −H g.
    for (let i = 0; i < n; i++) d[i] = -g[i]!;
    for (let i = S.length - 1; i >= 0; i--) {
      alpha[i] = rho[i]! * vdot(S[i]!, d);
      const yi = Y[i]!;
      for (let t = 0; t < n; t++) d[t]! -= alpha[i]! * yi[t]!;
    }
    if (S.length > 0) {
      const last = S.length - 1;
      const gamma = vdot(S[last]!, Y[last]!) / vdot(Y[last]!, Y[last]!);
      for (let t = 0; t < n; t++) d[t]! *= gamma;
    } else {
      const gn0 = Math.sqrt(vdot(g, g));
      for (let t = 0; t < n; t++) d[t]! /= Math.max(1, gn0);
    }
    for (let i = 0; i < S.length; i++) {
      const beta = rho[i]! * vdot(Y[i]!, d);
      const si = S[i]!;
      for (let t = 0; t < n; t++) d[t]! += (alpha[i]! - beta) * si[t]!;
    }
    let slope = vdot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (curvature information gone stale): restart along −g.
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let t = 0; t < n; t++) d[t] = -g[t]!;
      slope = vdot(g, d);
    }
    let step = 1;
    let fn = NaN;
    let accepted = false;
    for (let ls = 0; ls < 50; ls++) {
      for (let t = 0; t < n; t++) xn[t] = x[t]! + step * d[t]!;
      fn = fg(xn, gn);
      if (Number.isFinite(fn) && fn <= f + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      s[t] = xn[t]! - x[t]!;
      y[t] = gn[t]! - g[t]!;
    }
    const sy = vdot(s, y);
    if (sy > 1e-300) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    const decrease = f - fn;
    x.set(xn);
    g.set(gn);
    f = fn;
    converged = infNorm(g) <= gtol;
    if (!converged && decrease <= 0) break;
  }
  return { x, f, iterations: it, gradNorm: infNorm(g), converged };
}

/**
 * Fits x one-hot → f(x) ∈ R^k → softmax(W f(x) + b) on the exact expected log-loss of a joint
 * distribution (L-BFGS from a small seeded initialisation, b starting at log P(y)).
 */
export function trainBottleneck(j: JointDistribution, k: number, opts: { seed?: number; maxIter?: number; gtol?: number } = {}): BottleneckFit {
  checkJoint(j);
  const { nx, K } = j;
  if (!Number.isInteger(k) || k < 1) throw new UsageError(`bottleneck k must be a positive integer (got ${k})`);
  const rng = new Rng(deriveSeed(opts.seed ?? 0, 0xb077));
  const n = nx * k + K * k + K;
  const theta = new Float64Array(n);
  for (let i = 0; i < nx * k + K * k; i++) theta[i] = 0.1 * rng.normal();
  const py = classMarginal(j);
  for (let y = 0; y < K; y++) theta[nx * k + K * k + y] = Math.log(Math.max(py[y]!, 1e-300));
  // In the natural coordinates ξ(x) = √P(x) f(x), ψ(y) = √P(y) w_y the local problem is the plain
  // factorisation ‖B̃ − ξψᵀ‖²: optimise there (a diagonal preconditioner), map back at the end.
  const sx = j.px.map((p) => Math.sqrt(Math.max(p, 1e-300)));
  const sy = py.map((p) => Math.sqrt(Math.max(p, 1e-300)));
  // The factor curvature is ~σ_1(B̃) (‖ψ‖² at the optimum), the bias curvature ~P(y): the bias
  // coordinate is scaled by √σ_1 so that both are alike and the quasi-Newton scale fits both.
  const sigma1 = Math.sqrt(Math.max(0, symEig(new PosteriorMoments(K).addJoint(j).dtmGram(), K).values[0]!));
  const sb = 1 / Math.sqrt(Math.max(sigma1, 1e-8));
  const toModel = (t: Float64Array, out: Float64Array) => {
    for (let x = 0; x < nx; x++) for (let c = 0; c < k; c++) out[x * k + c] = t[x * k + c]! / sx[x]!;
    for (let y = 0; y < K; y++) for (let c = 0; c < k; c++) out[nx * k + y * k + c] = t[nx * k + y * k + c]! / sy[y]!;
    for (let y = 0; y < K; y++) out[nx * k + K * k + y] = t[nx * k + K * k + y]! * sb;
  };
  const inner = new Float64Array(n);
  const innerGrad = new Float64Array(n);
  const fg = (t: Float64Array, g: Float64Array): number => {
    toModel(t, inner);
    const f = bottleneckLoss(j, k, inner, innerGrad);
    for (let x = 0; x < nx; x++) for (let c = 0; c < k; c++) g[x * k + c] = innerGrad[x * k + c]! / sx[x]!;
    for (let y = 0; y < K; y++) for (let c = 0; c < k; c++) g[nx * k + y * k + c] = innerGrad[nx * k + y * k + c]! / sy[y]!;
    for (let y = 0; y < K; y++) g[nx * k + K * k + y] = innerGrad[nx * k + K * k + y]! * sb;
    return f;
  };
  for (let x = 0; x < nx; x++) for (let c = 0; c < k; c++) theta[x * k + c]! *= sx[x]!;
  for (let y = 0; y < K; y++) for (let c = 0; c < k; c++) theta[nx * k + y * k + c]! *= sy[y]!;
  for (let y = 0; y < K; y++) theta[nx * k + K * k + y]! /= sb;
  // L-BFGS restarts (fresh curvature memory) while they still make progress. Gradients scale
  // like σ_1: stop at 1e-7·σ_1, call it converged at 1e-5·σ_1 (angles then settle to ~1e-4°).
  const maxIter = opts.maxIter ?? 4000;
  const gtol = opts.gtol ?? 1e-7 * Math.max(sigma1, 1e-8);
  let res = lbfgs(fg, theta, { maxIter, gtol });
  let iterations = res.iterations;
  while (!res.converged && iterations < maxIter) {
    const again = lbfgs(fg, res.x, { maxIter: maxIter - iterations, gtol });
    iterations += again.iterations;
    const progressed = again.f < res.f;
    res = again;
    if (!progressed) break;
  }
  const modelTheta = new Float64Array(n);
  toModel(res.x, modelTheta);
  res = { ...res, x: modelTheta, iterations };
  return {
    k,
    F: res.x.slice(0, nx * k),
    W: res.x.slice(nx * k, nx * k + K * k),
    b: res.x.slice(nx * k + K * k),
    kl: res.f,
    iterations: res.iterations,
    gradNorm: res.gradNorm,
    converged: res.gradNorm <= 100 * gtol,
  };
}

export interface SyntheticLowrankOptions {
  symbols: number;
  classes: number;
  /** Bottleneck width (meaningful with k < K − 1). */
  k: number;
  epsilons: readonly number[];
  rank?: number;
  decay?: number;
  seed?: number;
  maxIter?: number;
}

export interface SyntheticLowrankRow extends SubspaceComparison {
  epsilon: number;
  /** σ_1(B̃): maximal correlation. */
  sigma1: number;
  /** Σσ_i² = χ²(P_XY ‖ P_X P_Y). */
  energy: number;
  singularValues: number[];
  /** Largest |σ_i(computed) − σ_i(constructed)| (a check of the Gram path). */
  spectrumError: number;
  /** Principal angles (degrees) between the MMSE matrix's top-k class-side vectors and B̃'s. */
  mmseAnglesDeg: number[];
  kl: number;
  iterations: number;
  gradNorm: number;
  converged: boolean;
}

export interface SyntheticLowrankResult {
  definition: string;
  source: string;
  symbols: number;
  classes: number;
  k: number;
  rank: number;
  decay: number;
  seed: number;
  rows: SyntheticLowrankRow[];
  /** Whether the largest angle grows with ε (non-decreasing over the rows, sorted by ε). */
  monotone: boolean;
}

/** The synthetic experiment: for each ε, B̃'s spectrum, a trained bottleneck, and their angles. */
export function lowrankSynthetic(opts: SyntheticLowrankOptions): SyntheticLowrankResult {
  const seed = opts.seed ?? 0;
  const K = opts.classes;
  if (!Number.isInteger(opts.k) || opts.k < 1 || opts.k > K - 1) throw new UsageError(`--k must be an integer in 1..K − 1 = ${K - 1} (got ${opts.k}); the analysis is meaningful with k < K − 1`);
  if (opts.epsilons.length === 0) throw new UsageError('give at least one --epsilon value');
  const eps = [...opts.epsilons].sort((a, b) => a - b);
  const rows: SyntheticLowrankRow[] = [];
  let rank = 0;
  for (const epsilon of eps) {
    const joint = localJoint({ symbols: opts.symbols, classes: K, epsilon, seed, ...(opts.rank !== undefined ? { rank: opts.rank } : {}), ...(opts.decay !== undefined ? { decay: opts.decay } : {}) });
    rank = joint.rank;
    const spec = dtmSpectrum(joint);
    let spectrumError = 0;
    for (let i = 0; i < K; i++) spectrumError = Math.max(spectrumError, Math.abs(spec.singularValues[i]! - (i < joint.rank ? joint.singularValues[i]! : 0)));
    const fit = trainBottleneck(joint, opts.k, { seed, ...(opts.maxIter !== undefined ? { maxIter: opts.maxIter } : {}) });
    const H = scaledHead(fit.W, K, opts.k, spec.py);
    const cmp = compareHeadSubspace(spec, headGram(H, K, opts.k), opts.k);
    const mm = mmseSpectrum(joint);
    const mmseAnglesDeg = Array.from(principalAngles(leading(mm.vectors, K, opts.k), leading(spec.vectors, K, opts.k), K, opts.k, opts.k), (t) => (t * 180) / Math.PI);
    rows.push({
      epsilon,
      sigma1: spec.singularValues[0]!,
      energy: spec.energy,
      singularValues: Array.from(spec.singularValues),
      spectrumError,
      ...cmp,
      mmseAnglesDeg,
      kl: fit.kl,
      iterations: fit.iterations,
      gradNorm: fit.gradNorm,
      converged: fit.converged,
    });
  }
  const monotone = rows.every((r, i) => i === 0 || r.maxAngleDeg >= rows[i - 1]!.maxAngleDeg);
  return { definition: LOWRANK_DEFINITION, source: LOWRANK_SOURCE, symbols: opts.symbols, classes: K, k: opts.k, rank, decay: opts.decay ?? 0.6, seed, rows, monotone };
}

// ---------------------------------------------------------------------------------------------
// Real-model mode

export interface ModelLowrankOptions {
  model: string;
  reference: string;
  dataset: string;
  split?: Split;
  limit?: number;
  perClass?: number;
  seed?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SpectrumSummary {
  /** σ_1: maximal correlation (0 = independent, 1 = some class set determined by x). */
  sigma1: number;
  /** Σσ_i². */
  energy: number;
  singularValues: number[];
}

export interface ModelLowrankRow {
  k: number;
  /** σ_k(B̃) of the reference posteriors. */
  sigma: number;
  /** Head H = √P(y)·centred W alone (not invariant to invertible maps of the features). */
  raw: SubspaceComparison;
  /** Head whitened by the features: top-k of H Σ_f Hᵀ = Cov of the scaled, centred logits (invariant); null without features. */
  whitened: SubspaceComparison | null;
  /** Whitened head against the model's own posterior B̃ (null without features). */
  whitenedSelf: SubspaceComparison | null;
}

export interface ModelLowrankResult {
  definition: string;
  source: string;
  model: string;
  reference: string;
  dataset: string;
  split: string | null;
  items: number;
  K: number;
  head: { description: string; K: number; d: number; inputLayer: string | null; outputLayer: string; rank: number };
  /** P(y) from the reference posteriors (mean over the items). */
  py: number[];
  /** B̃ of the reference posteriors with P(x) = 1/N. */
  referenceDtm: SpectrumSummary;
  /** B̃ of the model's own posteriors. */
  selfDtm: SpectrumSummary;
  /** MMSE matrix (one-hot Y, reference posteriors): singular values. */
  mmse: SpectrumSummary;
  accuracy: { model: number; reference: number; agreement: number };
  /** One row per k = 1..K − 1. */
  rows: ModelLowrankRow[];
  elapsedMs: number;
}

function summary(s: ClassSpectrum): SpectrumSummary {
  return { sigma1: s.singularValues[0]!, energy: s.energy, singularValues: Array.from(s.singularValues) };
}

/** Row-wise softmax unless the rows already are probability vectors. */
function toPosteriors(v: Float32Array, n: number, K: number): Float64Array {
  let isProb = true;
  for (let i = 0; i < n && isProb; i++) {
    let s = 0;
    for (let y = 0; y < K; y++) {
      const p = v[i * K + y]!;
      if (!(p >= 0)) {
        isProb = false;
        break;
      }
      s += p;
    }
    if (Math.abs(s - 1) > 1e-3) isProb = false;
  }
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    if (isProb) {
      let s = 0;
      for (let y = 0; y < K; y++) s += v[i * K + y]!;
      for (let y = 0; y < K; y++) out[i * K + y] = v[i * K + y]! / s;
      continue;
    }
    let m = -Infinity;
    for (let y = 0; y < K; y++) m = Math.max(m, v[i * K + y]!);
    let s = 0;
    for (let y = 0; y < K; y++) {
      const e = Math.exp(v[i * K + y]! - m);
      out[i * K + y] = e;
      s += e;
    }
    for (let y = 0; y < K; y++) out[i * K + y]! /= s;
  }
  return out;
}

function argmax(v: ArrayLike<number>, o: number, K: number): number {
  let best = 0;
  for (let y = 1; y < K; y++) if (v[o + y]! > v[o + best]!) best = y;
  return best;
}

/**
 * Model mode: the model's classifier head against B̃ of a reference model's posteriors over a
 * dataset (P(x) = 1/N over the chosen images). One pass runs both models batch by batch.
 */
export async function lowrankModel(opts: ModelLowrankOptions): Promise<ModelLowrankResult> {
  const t0 = performance.now();
  const [{ openDataset }, { preprocess }, { batchesOf, selectIndices }, { inferPreprocess }, { openModel }] = await Promise.all([
    import('../data/open.js'),
    import('../data/preprocess.js'),
    import('../data/sampling.js'),
    import('../pipeline/fit-input.js'),
    import('../runtime/open.js'),
  ]);
  const ds = await openDataset(opts.dataset, opts.split ? { split: opts.split } : {});
  const K0 = ds.classes.length;
  const idx = selectIndices(ds.labels, K0, { ...(opts.perClass !== undefined ? { perClass: opts.perClass } : {}), ...(opts.limit !== undefined ? { limit: opts.limit } : {}), seed: opts.seed ?? 0 });
  if (idx.length < 2) throw new UsageError(`dataset ${opts.dataset}: ${idx.length} item(s) selected; the analysis needs at least two`);
  const model = await openModel(opts.model);
  let reference: ModelRunner | null = null;
  try {
    const head = await readClassifierHead(model, opts.model);
    reference = await openModel(opts.reference);
    const refOut = outputLayer(reference.layers());
    const refK = valuesPerItem(refOut.shape);
    if (refK !== head.K) throw new UsageError(`the reference ${opts.reference} scores ${refK} classes but the head of ${opts.model} has ${head.K}`);
    if (K0 !== head.K) throw new UsageError(`dataset ${opts.dataset} has ${K0} classes but the head of ${opts.model} has ${head.K}`);
    const K = head.K;
    const d = head.d;
    const modelPre = inferPreprocess(model.inputShape, ds);
    const refPre = inferPreprocess(reference.inputShape, ds);
    const refMoments = new PosteriorMoments(K);
    const selfMoments = new PosteriorMoments(K);
    const featSum = new Float64Array(d);
    let featShift: Float64Array | null = null;
    const featGram = head.inputLayer ? new Float64Array(d * d) : null;
    let correctModel = 0;
    let correctRef = 0;
    let agree = 0;
    let done = 0;
    const fetch = head.inputLayer ? [head.outputLayer, head.inputLayer] : [head.outputLayer];
    for await (const raw of batchesOf(ds, idx, opts.batchSize ?? 256)) {
      const n = raw.labels.length;
      const mOut = await model.run(preprocess(raw, modelPre), fetch);
      const rOut = await reference.run(preprocess(raw, refPre), [refOut.id]);
      const logits = mOut.get(head.outputLayer)!;
      const refT = rOut.get(refOut.id)!;
      if (logits.data.length !== n * K || refT.data.length !== n * K) throw new RuntimeFailure(`model outputs have ${logits.data.length / n} and ${refT.data.length / n} values per item; ${K} expected`);
      const qs = toPosteriors(logits.data, n, K);
      const qr = toPosteriors(refT.data, n, K);
      refMoments.add(qr, n);
      selfMoments.add(qs, n);
      for (let i = 0; i < n; i++) {
        const pm = argmax(qs, i * K, K);
        const pr = argmax(qr, i * K, K);
        if (pm === raw.labels[i]) correctModel++;
        if (pr === raw.labels[i]) correctRef++;
        if (pm === pr) agree++;
      }
      if (featGram && head.inputLayer) {
        const f = mOut.get(head.inputLayer)!;
        if (f.data.length !== n * d) throw new RuntimeFailure(`head input \`${head.inputLayer}\` has ${f.data.length / n} values per item; the head expects ${d}`);
        // Moments about the first batch's mean, not about 0: a raw second moment minus μμᵀ
        // cancels away the variance of features with large offsets (1.7e-4 relative at offset 20).
        if (!featShift) {
          featShift = new Float64Array(d);
          for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) featShift[c]! += f.data[i * d + c]! / n;
        }
        const shifted = new Float32Array(n * d);
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < d; c++) {
            const v = f.data[i * d + c]! - featShift[c]!;
            shifted[i * d + c] = v;
            featSum[c]! += v;
          }
        }
        await gram(shifted, n, d, featGram);
      }
      done += n;
      opts.onProgress?.(done, idx.length);
    }
    const N = done;
    const py = refMoments.marginal();
    if (py.some((p) => !(p > 0))) throw new RuntimeFailure('the reference gives some class zero probability on every item; B̃ is undefined for it');
    const refSpec = spectrumFromGram(refMoments.dtmGram(), K);
    const selfPy = selfMoments.marginal();
    const selfSpec = spectrumFromGram(selfMoments.dtmGram(), K);
    const mmseSpec = spectrumFromGram(refMoments.covariance(), K);
    const H = scaledHead(head.W, K, d, py);
    const rawG = headGram(H, K, d);
    let whitenedG: Float64Array | null = null;
    let whitenedSelfG: Float64Array | null = null;
    if (featGram) {
      const C = new Float64Array(d * d);
      for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) C[a * d + b] = featGram[a * d + b]! / N - (featSum[a]! / N) * (featSum[b]! / N);
      whitenedG = headGram(H, K, d, C);
      whitenedSelfG = headGram(scaledHead(head.W, K, d, selfPy), K, d, C);
    }
    const rows: ModelLowrankRow[] = [];
    for (let k = 1; k <= K - 1; k++) {
      rows.push({
        k,
        sigma: refSpec.singularValues[k - 1]!,
        raw: compareHeadSubspace(refSpec, rawG, k),
        whitened: whitenedG ? compareHeadSubspace(refSpec, whitenedG, k) : null,
        whitenedSelf: whitenedSelfG ? compareHeadSubspace(selfSpec, whitenedSelfG, k) : null,
      });
    }
    return {
      definition: LOWRANK_DEFINITION,
      source: LOWRANK_SOURCE,
      model: opts.model,
      reference: opts.reference,
      dataset: opts.dataset,
      split: opts.split ?? null,
      items: N,
      K,
      head: { description: head.description, K, d, inputLayer: head.inputLayer, outputLayer: head.outputLayer, rank: gramRank(rawG, K) },
      py: Array.from(py),
      referenceDtm: summary(refSpec),
      selfDtm: summary(selfSpec),
      mmse: summary(mmseSpec),
      accuracy: { model: correctModel / N, reference: correctRef / N, agreement: agree / N },
      rows,
      elapsedMs: performance.now() - t0,
    };
  } finally {
    await model.dispose();
    if (reference) await reference.dispose();
  }
}
