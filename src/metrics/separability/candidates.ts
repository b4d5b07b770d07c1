/**
 * The κ lower bound of docs/metrics/separability.md, for many two-sided problems at once: candidate
 * directions (mean difference, regularised LDA, L2 logistic regression, seeded random
 * directions), then gradient ascent from the best one on the smooth pairwise surrogate
 * mean σ(τ wᵀ(a_i − b_j)) over sampled pairs.
 *
 * Inputs are whitened features (see reduce-pca.ts), grouped by class. A problem is two sides,
 * each a list of groups: a class pair (one group each) or one-vs-rest (one group against all the
 * others). All problems advance in lockstep so that the n·r products of one step run as one
 * onnxruntime product per group (Z_g times the stacked directions of every problem that uses g),
 * instead of one small product per problem.
 *
 * Affine invariance. κ itself is invariant to invertible affine maps of the features; this
 * estimator is made invariant by construction, not only in the limit:
 *   - the features are whitened first, so an affine map of the raw features becomes an orthogonal
 *     map Q of the whitened ones (z' = Q z);
 *   - every step below is rotation-equivariant (w' = Q w): the candidates are built from means,
 *     scatter matrices and scores; the ridge is relative to tr(S_W); the random directions are
 *     random combinations Σ ρ_i (z_i − μ) of the problem's own rows (seeded by row index, not
 *     by coordinate); pair sampling is by row index; step sizes are angles and τ is relative to
 *     the score spread.
 * Scores wᵀz are then the same up to rounding, and so is every count. Without whitening the
 * mean difference, the ridge of LDA, the gradient steps and isotropic random directions would
 * all depend on the coordinate system.
 */
import { crossGram, gram, matmul } from '../../linalg/ort-ops.js';
import { Rng } from '../../util/rng.js';
import { pairCounts } from './auc.js';
import { cholesky, cholSolve, transposeSquare } from './small.js';
import { dot } from '../../linalg/kernels.js';

export interface EngineParams {
  /** LDA ridge λ relative to the mean eigenvalue of the pooled within-class covariance: λ = ridge·tr(S_W)/r. */
  ridge: number;
  /** Preconditioned gradient steps of the logistic regression. */
  logisticSteps: number;
  /** Seeded random directions per problem. */
  randomDirections: number;
  /** Gradient-ascent steps of the refinement. */
  refineSteps: number;
  /** Pairs (a_i, b_j) sampled per refinement step; all m·n pairs when m·n is at most this. */
  refinePairs: number;
  /** Surrogate sharpness τ at the first and last refinement step, in units of 1/std(scores). */
  tauStart: number;
  tauEnd: number;
  /** Angular step (radians) of the refinement at the first and last step. */
  stepStart: number;
  stepEnd: number;
}

/**
 * Refinement budget: 40 steps of 2048 sampled pairs. On 10 classes × 200 rows (PCA 20, the
 * audit's guard) 100 × 4096 cost 2.5× as much for a one-vs-one mean 0.0005 higher and the same
 * worst pair; the held-out κ did not improve with more steps (in-sample gains past this point
 * are mostly fitted noise).
 */
export const DEFAULT_ENGINE_PARAMS: EngineParams = {
  ridge: 1e-3,
  logisticSteps: 30,
  randomDirections: 4,
  refineSteps: 40,
  refinePairs: 2048,
  tauStart: 2,
  tauEnd: 200,
  stepStart: 0.5,
  stepEnd: 0.001,
};

/** Rows of one class (or other block) in whitened coordinates, n×r row-major. */
export interface Group {
  Z: Float64Array;
  n: number;
}

/** Side A against side B; each side is a list of group indices. */
export interface Problem {
  a: number[];
  b: number[];
}

export const CANDIDATES = ['mean-difference', 'lda', 'logistic', 'random'] as const;
export type CandidateName = (typeof CANDIDATES)[number];

export interface ProblemFit {
  /** The best κ_w found (a lower bound on κ). */
  kappa: number;
  /** The candidate whose direction gave `kappa`, or `refined:<candidate>` when the refinement improved on it. */
  winner: string;
  /** κ_w of each candidate (random: the best of the random directions) and of the refinement's best iterate. */
  candidates: Record<CandidateName | 'refined', number>;
  /** The winning direction (whitened coordinates, unit norm, oriented so that A scores higher). */
  w: Float64Array;
  m: number;
  n: number;
}

/** Where each problem's rows come from: problem p's rows are side A's groups, then side B's. */
interface Layout {
  /** For each group, the problems using it and the row offset of the group in each. */
  members: { p: number; off: number }[][];
  m: Int32Array;
  n: Int32Array;
}

function layout(groups: Group[], problems: Problem[]): Layout {
  const members: { p: number; off: number }[][] = groups.map(() => []);
  const m = new Int32Array(problems.length);
  const n = new Int32Array(problems.length);
  problems.forEach((pr, p) => {
    let off = 0;
    for (const g of pr.a) {
      members[g]!.push({ p, off });
      off += groups[g]!.n;
    }
    m[p] = off;
    for (const g of pr.b) {
      members[g]!.push({ p, off });
      off += groups[g]!.n;
    }
    n[p] = off - m[p]!;
  });
  return { members, m, n };
}

/**
 * Below this many multiply-adds a product runs in plain JavaScript: an onnxruntime call costs
 * ~0.3–0.7 ms of scheduling whatever its size, which is ~1M multiply-adds of a JS loop, and the
 * lockstep iterations issue thousands of products.
 */
const ORT_MIN_MADDS = 1 << 18;

/** Z (n×r) times the C directions Wt (C×r, one per row): n×C, row-major. */
async function rowsTimesDirections(Z: Float64Array, Wt: Float64Array, n: number, r: number, C: number): Promise<Float64Array> {
  if (n * r * C >= ORT_MIN_MADDS) {
    const W = new Float64Array(r * C);
    for (let c = 0; c < C; c++) for (let i = 0; i < r; i++) W[i * C + c] = Wt[c * r + i]!;
    return matmul(Z, W, n, r, C);
  }
  const S = new Float64Array(n * C);
  for (let row = 0; row < n; row++) {
    const zo = row * r;
    for (let c = 0; c < C; c++) S[row * C + c] = dot(Z, Wt, r, zo, c * r);
  }
  return S;
}

/** Zᵀ Cm for Z (n×r) and coefficients Cm (n×C): C×r, one combination of rows per row. */
async function rowsTransposedTimes(Z: Float64Array, Cm: Float64Array, n: number, r: number, C: number): Promise<Float64Array> {
  if (n * r * C >= ORT_MIN_MADDS) {
    const G = await crossGram(Z, Cm, n, r, C);
    const out = new Float64Array(C * r);
    for (let i = 0; i < r; i++) for (let c = 0; c < C; c++) out[c * r + i] = G[i * C + c]!;
    return out;
  }
  const out = new Float64Array(C * r);
  for (let row = 0; row < n; row++) {
    const zo = row * r;
    for (let c = 0; c < C; c++) {
      const v = Cm[row * C + c]!;
      if (v === 0) continue;
      const oo = c * r;
      for (let i = 0; i < r; i++) out[oo + i]! += v * Z[zo + i]!;
    }
  }
  return out;
}

/**
 * Scores of every row of every active problem under `cols` directions per problem.
 * dirs[p] is cols×r (one direction per row); the result for p is cols×N_p (one score list per
 * direction, rows in the problem's layout).
 */
async function scoreAll(
  groups: Group[],
  r: number,
  lay: Layout,
  dirs: (Float64Array | null)[],
  cols: number,
): Promise<(Float64Array | null)[]> {
  const out = dirs.map((d, p) => (d ? new Float64Array(cols * (lay.m[p]! + lay.n[p]!)) : null));
  for (let g = 0; g < groups.length; g++) {
    const mem = lay.members[g]!.filter((x) => dirs[x.p] !== null);
    const grp = groups[g]!;
    if (mem.length === 0 || grp.n === 0) continue;
    const C = mem.length * cols;
    // Directions as C rows of r (column t·cols + c of the product).
    const Wt = new Float64Array(C * r);
    mem.forEach((x, t) => Wt.set(dirs[x.p]!, t * cols * r));
    const S = await rowsTimesDirections(grp.Z, Wt, grp.n, r, C);
    mem.forEach((x, t) => {
      const o = out[x.p]!;
      const Np = lay.m[x.p]! + lay.n[x.p]!;
      for (let c = 0; c < cols; c++) {
        const base = c * Np + x.off;
        for (let row = 0; row < grp.n; row++) o[base + row] = S[row * C + t * cols + c]!;
      }
    });
  }
  return out;
}

/**
 * Σ_i coef_i z_i for every active problem and each of `cols` coefficient vectors (coefs[p] is
 * cols×N_p); the result for p is cols×r. This is how every gradient is formed: the gradient of
 * anything that depends on the scores is a weighted sum of rows, so the m·n differences
 * a_i − b_j are never built.
 */
async function backprojectAll(
  groups: Group[],
  r: number,
  lay: Layout,
  coefs: (Float64Array | null)[],
  cols: number,
): Promise<(Float64Array | null)[]> {
  const out = coefs.map((c) => (c ? new Float64Array(cols * r) : null));
  for (let g = 0; g < groups.length; g++) {
    const mem = lay.members[g]!.filter((x) => coefs[x.p] !== null);
    const grp = groups[g]!;
    if (mem.length === 0 || grp.n === 0) continue;
    const C = mem.length * cols;
    const Cm = new Float64Array(grp.n * C);
    mem.forEach((x, t) => {
      const cf = coefs[x.p]!;
      const Np = lay.m[x.p]! + lay.n[x.p]!;
      for (let c = 0; c < cols; c++) {
        const base = c * Np + x.off;
        for (let row = 0; row < grp.n; row++) Cm[row * C + t * cols + c] = cf[base + row]!;
      }
    });
    const G = await rowsTransposedTimes(grp.Z, Cm, grp.n, r, C);
    mem.forEach((x, t) => {
      const o = out[x.p]!;
      for (let c = 0; c < cols; c++) for (let i = 0; i < r; i++) o[c * r + i]! += G[(t * cols + c) * r + i]!;
    });
  }
  return out;
}

/** Per-group mean and scatter Σ (z − μ)(z − μ)ᵀ. */
async function groupMoments(groups: Group[], r: number): Promise<{ mean: Float64Array; scatter: Float64Array }[]> {
  const res: { mean: Float64Array; scatter: Float64Array }[] = [];
  for (const g of groups) {
    const mean = new Float64Array(r);
    for (let i = 0; i < g.n; i++) for (let j = 0; j < r; j++) mean[j]! += g.Z[i * r + j]!;
    if (g.n > 0) for (let j = 0; j < r; j++) mean[j]! /= g.n;
    // Centre first so the scatter does not lose digits to n·μμᵀ cancellation.
    const C = new Float64Array(g.n * r);
    for (let i = 0; i < g.n; i++) for (let j = 0; j < r; j++) C[i * r + j] = g.Z[i * r + j]! - mean[j]!;
    res.push({ mean, scatter: await gram(C, g.n, r) });
  }
  return res;
}

/** Mean and scatter of a side (a union of groups) about its own mean. */
function sideMoments(ids: number[], groups: Group[], mom: { mean: Float64Array; scatter: Float64Array }[], r: number) {
  let n = 0;
  const mean = new Float64Array(r);
  for (const g of ids) {
    const ng = groups[g]!.n;
    n += ng;
    for (let j = 0; j < r; j++) mean[j]! += ng * mom[g]!.mean[j]!;
  }
  if (n > 0) for (let j = 0; j < r; j++) mean[j]! /= n;
  const scatter = new Float64Array(r * r);
  for (const g of ids) {
    const S = mom[g]!.scatter;
    for (let i = 0; i < r * r; i++) scatter[i]! += S[i]!;
    if (ids.length > 1) {
      const ng = groups[g]!.n;
      const dm = new Float64Array(r);
      for (let j = 0; j < r; j++) dm[j] = mom[g]!.mean[j]! - mean[j]!;
      for (let i = 0; i < r; i++) {
        const v = ng * dm[i]!;
        if (v === 0) continue;
        for (let j = 0; j < r; j++) scatter[i * r + j]! += v * dm[j]!;
      }
    }
  }
  return { n, mean, scatter };
}

interface Setup {
  m: number;
  n: number;
  N: number;
  /** μ_A − μ_B. */
  delta: Float64Array;
  /** Mean of the problem's rows. */
  mu: Float64Array;
  /** Cholesky factor of S_W + λI, and its transpose. */
  L: Float64Array;
  Lt: Float64Array;
  lambda: number;
  /** LDA direction (S_W + λI)⁻¹ Δ. */
  lda: Float64Array;
  /** mn/N², the weight of ΔΔᵀ in the total covariance S_T = S_W + c ΔΔᵀ. */
  c: number;
  rng: Rng;
}

function problemSeed(seed: number, p: number): number {
  return (Math.imul(seed >>> 0, 0x2c1b3c6d) ^ Math.imul(p + 1, 0x297a2d39)) >>> 0;
}

function setupProblem(pr: Problem, groups: Group[], mom: { mean: Float64Array; scatter: Float64Array }[], r: number, ridge: number, rng: Rng): Setup {
  const A = sideMoments(pr.a, groups, mom, r);
  const B = sideMoments(pr.b, groups, mom, r);
  const N = A.n + B.n;
  const delta = new Float64Array(r);
  const mu = new Float64Array(r);
  for (let j = 0; j < r; j++) {
    delta[j] = A.mean[j]! - B.mean[j]!;
    mu[j] = (A.n * A.mean[j]! + B.n * B.mean[j]!) / N;
  }
  // Pooled within-class covariance S_W = (scatter_A + scatter_B)/N.
  const M = new Float64Array(r * r);
  let tr = 0;
  for (let i = 0; i < r * r; i++) M[i] = (A.scatter[i]! + B.scatter[i]!) / N;
  for (let i = 0; i < r; i++) tr += M[i * r + i]!;
  // A relative ridge keeps the LDA direction rotation-equivariant; the floor only matters when
  // every class is a single repeated point (tr = 0), where any λ > 0 gives the mean difference.
  const lambda = ridge * (tr > 0 ? tr / r : 1);
  for (let i = 0; i < r; i++) M[i * r + i]! += lambda;
  const L = cholesky(M, r);
  const Lt = transposeSquare(L, r);
  const lda = cholSolve(L, r, delta, Lt);
  return { m: A.n, n: B.n, N, delta, mu, L, Lt, lambda, lda, c: (A.n * B.n) / (N * N), rng };
}

function norm(v: Float64Array, o = 0, r = v.length): number {
  return Math.sqrt(dot(v, v, r, o, o));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/**
 * L2 logistic regression of side A (y = +1) against side B (y = −1), intercept unpenalised.
 * The Hessian is at most P = ¼ S_T + αI (rows centred on the problem mean, S_T their covariance;
 * Böhning 1992), so the loss is 1-smooth in the P-norm and the preconditioned step
 * v ← v − P⁻¹∇ needs no step-size search; Nesterov momentum on top (FISTA schedule) cuts the
 * steps needed by about the square root of the conditioning. With α = λ/4,
 * P = ¼ (S_W + λI + c ΔΔᵀ), whose inverse follows from the LDA Cholesky factor by
 * Sherman–Morrison: one factorisation serves both candidates.
 */
async function logisticAll(groups: Group[], r: number, lay: Layout, setups: (Setup | null)[], steps: number): Promise<(Float64Array | null)[]> {
  const P = setups.length;
  // Iterate (w, b), previous iterate, and the extrapolated point y where the gradient is taken.
  const W = setups.map((s) => (s ? new Float64Array(r) : null));
  const Wprev = setups.map((s) => (s ? new Float64Array(r) : null));
  const bias = new Float64Array(P);
  const biasPrev = new Float64Array(P);
  const active = setups.map((s) => s !== null);
  for (let t = 0; t < steps; t++) {
    if (!active.some(Boolean)) break;
    const beta = t / (t + 3);
    const Y = W.map((w, p) => {
      if (!w || !active[p]) return null;
      const prev = Wprev[p]!;
      const y = new Float64Array(r);
      for (let j = 0; j < r; j++) y[j] = w[j]! + beta * (w[j]! - prev[j]!);
      return y;
    });
    const yb = bias.map((b, p) => b + beta * (b - biasPrev[p]!));
    const S = await scoreAll(groups, r, lay, Y, 1);
    const coefs: (Float64Array | null)[] = S.map(() => null);
    const gsum = new Float64Array(P);
    for (let p = 0; p < P; p++) {
      const s = S[p];
      const st = setups[p];
      if (!s || !st) continue;
      const shift = yb[p]! - dot(Y[p]!, st.mu, r);
      const g = new Float64Array(st.N);
      let sum = 0;
      for (let i = 0; i < st.N; i++) {
        const y = i < st.m ? 1 : -1;
        // d/ds log(1 + e^{−y s}) = −y σ(−y s), averaged over the N rows.
        const v = (-y * sigmoid(-y * (s[i]! + shift))) / st.N;
        g[i] = v;
        sum += v;
      }
      coefs[p] = g;
      gsum[p] = sum;
    }
    const G = await backprojectAll(groups, r, lay, coefs, 1);
    for (let p = 0; p < P; p++) {
      const st = setups[p];
      const grad = G[p];
      const y = Y[p];
      if (!st || !grad || !y) continue;
      const alpha = st.lambda / 4;
      for (let j = 0; j < r; j++) grad[j] = grad[j]! - gsum[p]! * st.mu[j]! + alpha * y[j]!;
      const v = cholSolve(st.L, r, grad, st.Lt);
      const k = (st.c * dot(st.lda, grad, r)) / (1 + st.c * dot(st.delta, st.lda, r));
      const w = W[p]!;
      Wprev[p]!.set(w);
      biasPrev[p] = bias[p]!;
      let stepNorm = 0;
      for (let j = 0; j < r; j++) {
        const dj = 4 * (v[j]! - k * st.lda[j]!);
        w[j] = y[j]! - dj;
        stepNorm += dj * dj;
      }
      bias[p] = yb[p]! - 4 * gsum[p]!;
      if (Math.sqrt(stepNorm) <= 1e-12 * (norm(w) + 1e-300)) active[p] = false;
    }
  }
  return W;
}

/**
 * Fits every problem. `seed` fixes the random directions and the sampled pairs; problem p draws
 * from its own stream, so a problem's result does not depend on which others share the batch.
 */
export async function fitProblems(groups: Group[], r: number, problems: Problem[], params: EngineParams, seed: number): Promise<ProblemFit[]> {
  const lay = layout(groups, problems);
  const mom = await groupMoments(groups, r);
  const P = problems.length;
  const setups = problems.map((pr, p) => {
    if (lay.m[p]! === 0 || lay.n[p]! === 0) return null;
    return setupProblem(pr, groups, mom, r, params.ridge, new Rng(problemSeed(seed, p)));
  });

  const logistic = params.logisticSteps > 0 ? await logisticAll(groups, r, lay, setups, params.logisticSteps) : setups.map(() => null);

  // Random directions Σ ρ_i (z_i − μ): seeded by row, so they rotate with the data.
  const R = params.randomDirections;
  let randomDirs: (Float64Array | null)[] = setups.map(() => null);
  if (R > 0) {
    const coefs = setups.map((st) => {
      if (!st) return null;
      const c = new Float64Array(R * st.N);
      for (let i = 0; i < c.length; i++) c[i] = st.rng.normal();
      return c;
    });
    randomDirs = await backprojectAll(groups, r, lay, coefs, R);
    setups.forEach((st, p) => {
      const D = randomDirs[p];
      const c = coefs[p];
      if (!st || !D || !c) return;
      for (let k = 0; k < R; k++) {
        let s = 0;
        for (let i = 0; i < st.N; i++) s += c[k * st.N + i]!;
        for (let j = 0; j < r; j++) D[k * r + j]! -= s * st.mu[j]!;
      }
    });
  }

  // Evaluate all candidates: mean difference, LDA, logistic, random_1..R.
  const cols = 3 + R;
  const dirs = setups.map((st, p) => {
    if (!st) return null;
    const D = new Float64Array(cols * r);
    D.set(st.delta, 0);
    D.set(st.lda, r);
    const lw = logistic[p];
    if (lw) D.set(lw, 2 * r);
    const rd = randomDirs[p];
    if (rd) D.set(rd, 3 * r);
    return D;
  });
  const S = await scoreAll(groups, r, lay, dirs, cols);
  const fits: (ProblemFit | null)[] = setups.map(() => null);
  const start: (Float64Array | null)[] = setups.map(() => null);
  const startName: string[] = setups.map(() => '');
  for (let p = 0; p < P; p++) {
    const st = setups[p];
    const s = S[p];
    const D = dirs[p];
    if (!st || !s || !D) continue;
    const kap = new Float64Array(cols);
    const sign = new Float64Array(cols);
    for (let c = 0; c < cols; c++) {
      const sc = s.subarray(c * st.N, (c + 1) * st.N);
      const cnt = pairCounts(sc.subarray(0, st.m), sc.subarray(st.m));
      // κ maximises over all w, so −w is a candidate too; its count comes from the same pass.
      kap[c] = Math.max(cnt.greater, cnt.less) / cnt.total;
      sign[c] = cnt.less > cnt.greater ? -1 : 1;
    }
    let best = 0;
    for (let c = 1; c < cols; c++) if (kap[c]! > kap[best]!) best = c;
    let randomBest = 0;
    for (let c = 3; c < cols; c++) randomBest = Math.max(randomBest, kap[c]!);
    const name = best < 3 ? CANDIDATES[best]! : 'random';
    const w = new Float64Array(r);
    const nb = norm(D, best * r, r);
    for (let j = 0; j < r; j++) w[j] = nb > 0 ? (sign[best]! * D[best * r + j]!) / nb : 0;
    start[p] = nb > 0 ? w : null;
    startName[p] = name;
    fits[p] = {
      kappa: kap[best]!,
      winner: name,
      candidates: { 'mean-difference': kap[0]!, lda: kap[1]!, logistic: kap[2]!, random: R > 0 ? randomBest : Number.NaN, refined: Number.NaN },
      w,
      m: st.m,
      n: st.n,
    };
  }

  if (params.refineSteps > 0) await refineAll(groups, r, lay, setups, start, startName, fits, params);

  return fits.map((f, p) => {
    if (f) return f;
    const nan = Number.NaN;
    return { kappa: nan, winner: 'none', candidates: { 'mean-difference': nan, lda: nan, logistic: nan, random: nan, refined: nan }, w: new Float64Array(r), m: lay.m[p]!, n: lay.n[p]! };
  });
}

/** Surrogate pairs with τ|δ| beyond this have weight σ'(τδ) < e^{−36} ≈ 2e-16: ignored. */
const CUT = 36;

/**
 * Projected gradient ascent on the unit sphere of the smooth pairwise surrogate
 * F(w) = mean σ(τ (s_a_i − s_b_j)) over sampled pairs, from the best candidate. τ and the step
 * anneal geometrically (smooth and bold first, sharp and fine last). The exact κ_w of every
 * iterate is counted and the best iterate kept, so the refinement can only raise the bound.
 */
async function refineAll(
  groups: Group[],
  r: number,
  lay: Layout,
  setups: (Setup | null)[],
  start: (Float64Array | null)[],
  startName: string[],
  fits: (ProblemFit | null)[],
  params: EngineParams,
): Promise<void> {
  const P = setups.length;
  const W = start.map((w) => (w ? Float64Array.from(w) : null));
  const active = W.map((w, p) => w !== null && fits[p]!.kappa < 1);
  const bestRefined = new Float64Array(P).fill(Number.NaN);
  const T = params.refineSteps;
  for (let t = 0; t <= T; t++) {
    if (!active.some(Boolean)) break;
    const S = await scoreAll(groups, r, lay, W.map((w, p) => (active[p] ? w : null)), 1);
    const frac = T > 1 ? t / (T - 1) : 0;
    const tau0 = params.tauStart * Math.pow(params.tauEnd / params.tauStart, Math.min(frac, 1));
    const eta = params.stepStart * Math.pow(params.stepEnd / params.stepStart, Math.min(frac, 1));
    const coefs: (Float64Array | null)[] = S.map(() => null);
    for (let p = 0; p < P; p++) {
      const s = S[p];
      const st = setups[p];
      const f = fits[p];
      if (!s || !st || !f) continue;
      const cnt = pairCounts(s.subarray(0, st.m), s.subarray(st.m));
      const k = cnt.greater / cnt.total;
      if (!(bestRefined[p]! >= k)) bestRefined[p] = k;
      if (k > f.kappa) {
        f.kappa = k;
        f.winner = `refined:${startName[p]}`;
        f.w = Float64Array.from(W[p]!);
      }
      if (t === T || k === 1) {
        active[p] = false;
        continue;
      }
      let mean = 0;
      for (let i = 0; i < st.N; i++) mean += s[i]!;
      mean /= st.N;
      let v = 0;
      for (let i = 0; i < st.N; i++) v += (s[i]! - mean) ** 2;
      const sd = Math.sqrt(v / st.N);
      if (!(sd > 0)) {
        active[p] = false;
        continue;
      }
      const tau = tau0 / sd;
      const c = new Float64Array(st.N);
      const m = st.m;
      // Only pairs with τ|s_a − s_b| ≤ CUT carry weight (σ' < e^{−CUT} beyond), and every such
      // pair has its a below max(s_B) + CUT/τ and its b above min(s_A) − CUT/τ: sampling from
      // those rows alone gives the full-pair gradient, with the samples where they matter.
      let minA = Infinity;
      let maxB = -Infinity;
      for (let i = 0; i < m; i++) minA = Math.min(minA, s[i]!);
      for (let j = 0; j < st.n; j++) maxB = Math.max(maxB, s[m + j]!);
      const ia: number[] = [];
      const jb: number[] = [];
      for (let i = 0; i < m; i++) if (s[i]! <= maxB + CUT / tau) ia.push(i);
      for (let j = 0; j < st.n; j++) if (s[m + j]! >= minA - CUT / tau) jb.push(j);
      const na = ia.length;
      const nb = jb.length;
      const all = na * nb <= params.refinePairs;
      const pairs = all ? na * nb : params.refinePairs;
      for (let q = 0; q < pairs; q++) {
        const pick = all ? q : st.rng.int(na * nb);
        const qa = Math.floor(pick / nb);
        const i = ia[qa]!;
        const j = jb[pick - qa * nb]!;
        const x = tau * Math.abs(s[i]! - s[m + j]!);
        // dσ(τδ)/dw = τ σ'(τδ) (a_i − b_j), σ'(x) = e^{−|x|}/(1 + e^{−|x|})²; τ drops out of the
        // normalised step.
        if (x > CUT) continue;
        const e = Math.exp(-x);
        const wgt = e / ((1 + e) * (1 + e));
        c[i]! += wgt;
        c[m + j]! -= wgt;
      }
      coefs[p] = c;
    }
    const G = await backprojectAll(groups, r, lay, coefs, 1);
    for (let p = 0; p < P; p++) {
      const g = G[p];
      const w = W[p];
      if (!g || !w || !active[p]) continue;
      const gw = dot(g, w, r);
      for (let j = 0; j < r; j++) g[j] = g[j]! - gw * w[j]!;
      const gn = norm(g);
      if (!(gn > 0)) {
        active[p] = false;
        continue;
      }
      for (let j = 0; j < r; j++) w[j] = w[j]! + (eta * g[j]!) / gn;
      const wn = norm(w);
      for (let j = 0; j < r; j++) w[j] = w[j]! / wn;
    }
  }
  fits.forEach((f, p) => {
    if (f) f.candidates.refined = bestRefined[p]!;
  });
}

/**
 * κ_w on other rows for directions fitted elsewhere (the held-out control): the direction keeps
 * the orientation it was fitted with, so a direction that flips sign out of sample scores below ½.
 */
export async function evaluateDirections(groups: Group[], r: number, problems: Problem[], dirs: (Float64Array | null)[]): Promise<number[]> {
  const lay = layout(groups, problems);
  const usable = dirs.map((d, p) => (d && lay.m[p]! > 0 && lay.n[p]! > 0 ? d : null));
  const S = await scoreAll(groups, r, lay, usable, 1);
  return S.map((s, p) => {
    if (!s) return Number.NaN;
    const c = pairCounts(s.subarray(0, lay.m[p]!), s.subarray(lay.m[p]!));
    return c.greater / c.total;
  });
}
