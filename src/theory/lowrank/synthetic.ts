/**
 * The low-rank analysis on synthetic data (docs/theory.md): a seeded local-regime joint P(x,y)
 * whose B̃ has an exactly known SVD, and a bottleneck model (one-hot x → k-dim feature → softmax
 * head) fitted on the exact expected log-loss with the toolkit's L-BFGS (linalg/lbfgs.ts; plain
 * gradient descent on a factorised O(ε) target needs step sizes ∝ 1/ε to converge). The
 * experiment compares the fitted head's subspace with B̃'s top-k class-side singular vectors.
 */
import { UsageError } from '../../errors.js';
import { symEig } from '../../linalg/dense.js';
import { infNorm } from '../../linalg/kernels.js';
import { lbfgsSync } from '../../linalg/lbfgs.js';
import { Rng } from '../../util/rng.js';
import { deriveSeed } from '../../util/seed.js';
import { orthonormalColumns, principalAngles } from '../../metrics/baseline/subspaces.js';
import {
  LOWRANK_DEFINITION,
  LOWRANK_SOURCE,
  PosteriorMoments,
  checkJoint,
  classMarginal,
  compareHeadSubspace,
  dtmSpectrum,
  headGram,
  leading,
  mmseSpectrum,
  scaledHead,
  type JointDistribution,
  type SubspaceComparison,
} from './dtm.js';

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
  const evaluate = (t: Float64Array) => {
    const grad = new Float64Array(n);
    return { loss: fg(t, grad), grad };
  };
  const memory = 10;
  let res = lbfgsSync(evaluate, theta, { maxIter, gtol, memory });
  let iterations = res.iterations;
  while (res.status !== 'converged' && iterations < maxIter) {
    const again = lbfgsSync(evaluate, res.x, { maxIter: maxIter - iterations, gtol, memory });
    iterations += again.iterations;
    const progressed = again.loss < res.loss;
    res = again;
    if (!progressed) break;
  }
  const modelTheta = new Float64Array(n);
  toModel(res.x, modelTheta);
  const gradNorm = infNorm(res.grad);
  return {
    k,
    F: modelTheta.slice(0, nx * k),
    W: modelTheta.slice(nx * k, nx * k + K * k),
    b: modelTheta.slice(nx * k + K * k),
    kl: res.loss,
    iterations,
    gradNorm,
    converged: gradNorm <= 100 * gtol,
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
