/**
 * MD-LSM, the Minkowski-difference linear separability measure of docs/metrics/separability.md
 * (reconstructed definition): for classes A, B,
 *   κ(A,B) = max_{‖w‖=1} #{(i,j) : wᵀ(a_i − b_j) > 0} / (m·n),
 * reported as a lower bound (exact κ is NP-hard): the best κ_w over candidate directions, refined
 * by gradient ascent (candidates.ts). Beside it: the saturation guard (reduce-pca.ts), a held-out
 * κ and a label-permutation baseline (controls.ts), and optionally an exact LP check (lp.ts).
 *
 * Every result is plain JSON: undefined entries (the diagonal, classes without rows) are null.
 */
import { RuntimeFailure, UsageError } from '../../errors.js';
import type { FloatArray } from '../../linalg/ort-ops.js';
import type { SampleMatrix } from '../../stats/sample-buffer.js';
import { Rng } from '../../util/rng.js';
import { pairCounts } from './auc.js';
import { CANDIDATES, DEFAULT_ENGINE_PARAMS, fitProblems, evaluateDirections, type EngineParams, type Group, type Problem, type ProblemFit } from './candidates.js';
import { meanSd, permutedLabels, stratifiedSplit } from './controls.js';
import { lpSeparable, type LpOptions } from './lp.js';
import { DEFAULT_MAX_DIM_FRACTION, prepareFeatures, saturationGuard, type GuardOptions, type ReductionInfo } from './reduce-pca.js';

export const MDLSM_DEFINITION = 'MD-LSM κ (lower bound over candidate directions; reconstructed definition; docs/metrics/separability.md#mdlsm_kappa)';
export const LP_DEFINITION = 'exact linear separability (docs/metrics/separability.md#lp_separable_fraction): LP feasibility of y_i(wᵀx_i + b) ≥ 1 (HiGHS); hard-margin SVM geometric margin 1/‖w*‖';

export interface KappaOptions extends GuardOptions, Partial<EngineParams> {
  /** Seeds every random choice (random directions, sampled pairs, splits, permutations). Default 0. */
  seed?: number;
  /**
   * Also decide κ = 1 exactly: for pairs whose bound is below 1, solve the separability LP in
   * the whitened coordinates and, when it is feasible, use its direction (winner 'lp').
   * Default false (an LP per pair costs ~0.1–1 s).
   */
  exact?: boolean;
  /** LP limits for `exact`. */
  lp?: Pick<LpOptions, 'maxSize' | 'timeLimitS'>;
}

export interface MdlsmOptions extends KappaOptions {
  /** Label permutations for κ_null. Default 3; 0 skips the baseline. */
  permutations?: number;
  /** Fraction of each class used to fit directions for the held-out κ. Default 0.5; 0 skips it. */
  trainFraction?: number;
  /** Also report κ of each class against the union of the others. Default false. */
  oneVsRest?: boolean;
  /** Bootstrap replicates for the held-out 1 − κ interval. Default 100; 0 skips it. */
  inseparableBootstrapReps?: number;
}

export interface WorstPair {
  k: number;
  l: number;
  kappa: number;
}

export interface KappaMatrixSummary {
  /** K×K, symmetric, null on the diagonal and where a class has no rows. */
  matrix: (number | null)[][];
  /** One-vs-one mean over the defined pairs k < l. */
  mean: number | null;
  worst: WorstPair | null;
}

export interface MdlsmResult {
  name: 'mdlsm';
  definition: string;
  K: number;
  classCounts: number[];
  /** K×K in-sample κ (lower bound). */
  pairs: (number | null)[][];
  mean: number | null;
  worst: WorstPair | null;
  /** K×K: the direction that gave each κ (a candidate name, `refined:<candidate>`, or `lp`). */
  winners: (string | null)[][];
  /** K×K κ_w of each candidate (random: best of the random directions; refined: best refinement iterate). */
  candidates: Record<string, (number | null)[][]>;
  /** How often each winner name won, over the pairs. */
  winnerCounts: Record<string, number>;
  heldOut:
    | (KappaMatrixSummary & {
        trainFraction: number;
        /** 95% percentile bootstrap interval of the mean held-out 1 − κ (test rows resampled within class, directions fixed). */
        inseparableCi: [number, number] | null;
        bootstrapReps: number;
        /** Test rows of the smallest class pair, m·n: the count resolution of one pair's κ. */
        minPairComparisons: number;
      })
    | null;
  null: { mean: number | null; sd: number | null; permutations: number; values: (number | null)[] } | null;
  oneVsRest?: { kappa: (number | null)[]; winners: (string | null)[] };
  /** Pairs decided by the LP when `exact` is on. */
  exact?: { checked: number; separable: number; skipped: number };
  reduction: ReductionInfo;
  params: EngineParams & { seed: number; permutations: number; trainFraction: number; exact: boolean };
}

export interface PairKappaResult {
  kappa: number | null;
  winner: string;
  candidates: Record<string, number | null>;
  m: number;
  n: number;
  reduction: ReductionInfo;
  definition: string;
}

function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function engineParams(opts: Partial<EngineParams>): EngineParams {
  const p: EngineParams = { ...DEFAULT_ENGINE_PARAMS };
  for (const key of Object.keys(DEFAULT_ENGINE_PARAMS) as (keyof EngineParams)[]) {
    const v = opts[key];
    if (v === undefined) continue;
    if (!Number.isFinite(v) || v < 0) throw new UsageError(`mdlsm option ${key} must be a non-negative number, got ${v}`);
    p[key] = v;
  }
  for (const key of ['logisticSteps', 'randomDirections', 'refineSteps', 'refinePairs'] as const) {
    if (!Number.isInteger(p[key])) throw new UsageError(`mdlsm option ${key} must be an integer, got ${p[key]}`);
  }
  if (!(p.ridge > 0)) throw new UsageError(`mdlsm option ridge must be positive, got ${p.ridge}`);
  if (!(p.tauStart > 0 && p.tauEnd > 0 && p.stepStart > 0 && p.stepEnd > 0)) {
    throw new UsageError('mdlsm options tauStart, tauEnd, stepStart, stepEnd must be positive');
  }
  return p;
}

function checkSamples(s: SampleMatrix): void {
  if (!Number.isInteger(s.n) || !Number.isInteger(s.d) || s.n < 0 || s.d < 1) throw new UsageError(`sample matrix has shape ${s.n}×${s.d}`);
  if (s.X.length !== s.n * s.d) throw new UsageError(`sample matrix has ${s.X.length} values for ${s.n}×${s.d}`);
  if (s.labels.length !== s.n) throw new UsageError(`sample matrix has ${s.labels.length} labels for ${s.n} rows`);
  for (let i = 0; i < s.n; i++) {
    const y = s.labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= s.K) throw new UsageError(`label ${y} of row ${i} is outside 0..${s.K - 1}`);
  }
  for (let i = 0; i < s.X.length; i++) {
    if (!Number.isFinite(s.X[i]!)) throw new RuntimeFailure(`sample matrix has a non-finite value at row ${Math.floor(i / s.d)}, column ${i % s.d}`);
  }
}

function counts(labels: Int32Array, K: number): number[] {
  const c = new Array<number>(K).fill(0);
  for (const y of labels) c[y]!++;
  return c;
}

/** Rows of the smallest pair of non-empty classes; throws with fewer than two such classes. */
function minPairRows(classCounts: number[]): number {
  const nz = classCounts.filter((c) => c > 0).sort((a, b) => a - b);
  if (nz.length < 2) throw new UsageError(`linear separability needs at least two classes with samples (got ${nz.length})`);
  return nz[0]! + nz[1]!;
}

/** Groups of whitened rows by label, restricted to `rows` when given. */
function groupsOf(Z: Float64Array, r: number, labels: Int32Array, K: number, rows?: Int32Array): Group[] {
  const idx: number[][] = Array.from({ length: K }, () => []);
  const all = rows ?? Int32Array.from({ length: labels.length }, (_, i) => i);
  for (const i of all) idx[labels[i]!]!.push(i);
  return idx.map((list) => {
    const G = new Float64Array(list.length * r);
    list.forEach((i, t) => G.set(Z.subarray(i * r, (i + 1) * r), t * r));
    return { Z: G, n: list.length };
  });
}

function pairProblems(K: number): { problems: Problem[]; index: [number, number][] } {
  const problems: Problem[] = [];
  const index: [number, number][] = [];
  for (let k = 0; k < K; k++) {
    for (let l = k + 1; l < K; l++) {
      problems.push({ a: [k], b: [l] });
      index.push([k, l]);
    }
  }
  return { problems, index };
}

function emptyMatrix<T>(K: number): (T | null)[][] {
  return Array.from({ length: K }, () => new Array<T | null>(K).fill(null));
}

function summarise(K: number, index: [number, number][], values: number[]): KappaMatrixSummary {
  const matrix = emptyMatrix<number>(K);
  let sum = 0;
  let cnt = 0;
  let worst: WorstPair | null = null;
  index.forEach(([k, l], p) => {
    const v = values[p]!;
    if (!Number.isFinite(v)) return;
    matrix[k]![l] = v;
    matrix[l]![k] = v;
    sum += v;
    cnt++;
    if (!worst || v < worst.kappa) worst = { k, l, kappa: v };
  });
  return { matrix, mean: cnt > 0 ? sum / cnt : null, worst };
}

/**
 * The `exact` option: LP feasibility in the whitened coordinates for problems whose bound is
 * below 1. Separability is affine-invariant, so whitened coordinates answer the same question
 * with better-conditioned numbers.
 */
async function exactCheck(groups: Group[], r: number, problems: Problem[], fits: ProblemFit[], lp: KappaOptions['lp']): Promise<{ checked: number; separable: number; skipped: number }> {
  const out = { checked: 0, separable: 0, skipped: 0 };
  const rowsOf = (ids: number[]): Float64Array => {
    const n = ids.reduce((s, g) => s + groups[g]!.n, 0);
    const X = new Float64Array(n * r);
    let o = 0;
    for (const g of ids) {
      X.set(groups[g]!.Z, o);
      o += groups[g]!.Z.length;
    }
    return X;
  };
  for (let p = 0; p < problems.length; p++) {
    const f = fits[p]!;
    if (!(f.kappa < 1) || f.m === 0 || f.n === 0 || r === 0) continue;
    const A = rowsOf(problems[p]!.a);
    const B = rowsOf(problems[p]!.b);
    const res = await lpSeparable(A, B, r, { margin: false, ...lp });
    if (res.separable === null) {
      out.skipped++;
      continue;
    }
    out.checked++;
    if (!res.separable || !res.w) continue;
    const w = Float64Array.from(res.w);
    const score = (X: Float64Array, n: number): Float64Array => {
      const s = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let v = 0;
        for (let j = 0; j < r; j++) v += X[i * r + j]! * w[j]!;
        s[i] = v;
      }
      return s;
    };
    const c = pairCounts(score(A, f.m), score(B, f.n));
    const k = c.greater / c.total;
    // The LP solution separates with slack ≥ 1 (to HiGHS's tolerance), so this is 1.
    if (k > f.kappa) {
      f.kappa = k;
      f.winner = 'lp';
      let nw = 0;
      for (const v of w) nw += v * v;
      f.w = w.map((v) => v / Math.sqrt(nw));
    }
    if (k === 1) out.separable++;
  }
  return out;
}

interface Prepared {
  Z: Float64Array;
  r: number;
  reduction: ReductionInfo;
}

async function prepare(X: FloatArray, N: number, d: number, minRows: number, opts: GuardOptions, seed: number): Promise<Prepared> {
  const g = saturationGuard(d, minRows, opts);
  const p = await prepareFeatures(X, N, d, g.k, seed);
  return {
    Z: p.Z,
    r: p.r,
    reduction: { reduction: g.reduction, reason: g.reason, inputDim: d, dim: p.dim, minPairRows: minRows, whitenedRank: p.r, maxDimFraction: opts.maxDimFraction ?? DEFAULT_MAX_DIM_FRACTION },
  };
}

async function fit(groups: Group[], r: number, problems: Problem[], params: EngineParams, seed: number): Promise<ProblemFit[]> {
  if (r > 0) return fitProblems(groups, r, problems, params, seed);
  // No direction varies: every score ties, so no pair of points is separated.
  return problems.map((pr) => {
    const m = pr.a.reduce((s, g) => s + groups[g]!.n, 0);
    const n = pr.b.reduce((s, g) => s + groups[g]!.n, 0);
    const k = m > 0 && n > 0 ? 0 : Number.NaN;
    return { kappa: k, winner: 'none', candidates: { 'mean-difference': k, lda: k, logistic: k, random: k, refined: k }, w: new Float64Array(0), m, n };
  });
}

/**
 * κ for every class pair of a sample matrix, with the saturation guard, held-out κ and the
 * permutation baseline. Deterministic for a given seed.
 */
export async function mdlsm(samples: SampleMatrix, opts: MdlsmOptions = {}): Promise<MdlsmResult> {
  checkSamples(samples);
  const { K, n: N, d, labels } = samples;
  const params = engineParams(opts);
  const seed = opts.seed ?? 0;
  const P = opts.permutations ?? 3;
  const trainFraction = opts.trainFraction ?? 0.5;
  if (!Number.isInteger(P) || P < 0) throw new UsageError(`permutations must be a non-negative integer, got ${P}`);
  if (!(trainFraction >= 0 && trainFraction < 1)) throw new UsageError(`trainFraction must be in [0, 1), got ${trainFraction}`);
  const classCounts = counts(labels, K);
  const minRows = minPairRows(classCounts);
  const rng = new Rng(seed);
  const sub = (): number => rng.int(0x100000000);
  const seeds = { pca: sub(), main: sub(), split: sub(), held: sub(), ovr: sub() };

  const prep = await prepare(samples.X, N, d, minRows, opts, seeds.pca);
  const { Z, r } = prep;
  const { problems, index } = pairProblems(K);
  const groups = groupsOf(Z, r, labels, K);
  const fits = await fit(groups, r, problems, params, seeds.main);
  let exact: MdlsmResult['exact'];
  if (opts.exact) exact = await exactCheck(groups, r, problems, fits, opts.lp);

  const main = summarise(K, index, fits.map((f) => f.kappa));
  const winners = emptyMatrix<string>(K);
  const candidates: Record<string, (number | null)[][]> = {};
  for (const c of [...CANDIDATES, 'refined']) candidates[c] = emptyMatrix<number>(K);
  const winnerCounts: Record<string, number> = {};
  index.forEach(([k, l], p) => {
    const f = fits[p]!;
    if (!Number.isFinite(f.kappa)) return;
    winners[k]![l] = winners[l]![k] = f.winner;
    winnerCounts[f.winner] = (winnerCounts[f.winner] ?? 0) + 1;
    for (const [c, v] of Object.entries(f.candidates)) candidates[c]![k]![l] = candidates[c]![l]![k] = finite(v);
  });

  let heldOut: MdlsmResult['heldOut'] = null;
  if (trainFraction > 0) {
    const split = stratifiedSplit(labels, K, trainFraction, new Rng(seeds.split));
    const trainFits = await fit(groupsOf(Z, r, labels, K, split.train), r, problems, params, seeds.held);
    const testGroups = groupsOf(Z, r, labels, K, split.test);
    const dirs = trainFits.map((f) => (Number.isFinite(f.kappa) ? f.w : null));
    const values = r > 0 ? await evaluateDirections(testGroups, r, problems, dirs) : trainFits.map((f) => f.kappa);
    const summary = summarise(K, index, values);
    // The held-out 1 − κ's interval: test rows resampled within each class (directions fixed),
    // so it shows how far the count could move on another draw of test rows.
    const reps = opts.inseparableBootstrapReps ?? 100;
    const boot: number[] = [];
    if (r > 0 && summary.mean !== null && reps > 0) {
      const byClass: number[][] = Array.from({ length: K }, () => []);
      for (const i of split.test) byClass[labels[i]!]!.push(i);
      const brng = new Rng((seeds.held ^ 0x68e31da4) >>> 0);
      for (let b = 0; b < reps; b++) {
        const rows: number[] = [];
        for (const list of byClass) for (let t = 0; t < list.length; t++) rows.push(list[brng.int(list.length)]!);
        const v = await evaluateDirections(groupsOf(Z, r, labels, K, Int32Array.from(rows)), r, problems, dirs);
        const m = summarise(K, index, v).mean;
        if (m !== null) boot.push(1 - m);
      }
    }
    boot.sort((a, b) => a - b);
    const q = (p: number) => boot[Math.min(boot.length - 1, Math.max(0, Math.floor(p * (boot.length - 1) + 0.5)))]!;
    const testCounts = testGroups.map((g) => g.n).filter((c) => c > 0).sort((a, b) => a - b);
    heldOut = {
      ...summary,
      trainFraction,
      inseparableCi: boot.length ? [q(0.025), q(0.975)] : null,
      bootstrapReps: boot.length,
      minPairComparisons: testCounts.length >= 2 ? testCounts[0]! * testCounts[1]! : 0,
    };
  }

  let nullBaseline: MdlsmResult['null'] = null;
  if (P > 0) {
    const values: number[] = [];
    for (let q = 0; q < P; q++) {
      const perm = permutedLabels(labels, new Rng(sub()));
      const pf = await fit(groupsOf(Z, r, perm, K), r, problems, params, sub());
      const s = summarise(K, index, pf.map((f) => f.kappa));
      values.push(s.mean ?? Number.NaN);
    }
    const ms = meanSd(values.filter(Number.isFinite));
    nullBaseline = { mean: finite(ms.mean), sd: finite(ms.sd), permutations: P, values: values.map(finite) };
  }

  let oneVsRest: MdlsmResult['oneVsRest'];
  if (opts.oneVsRest) {
    const present = classCounts.map((c, k) => (c > 0 ? k : -1)).filter((k) => k >= 0);
    const ovr: Problem[] = present.map((k) => ({ a: [k], b: present.filter((l) => l !== k) }));
    const of = await fit(groups, r, ovr, params, seeds.ovr);
    if (opts.exact) await exactCheck(groups, r, ovr, of, opts.lp);
    const kappa = new Array<number | null>(K).fill(null);
    const w = new Array<string | null>(K).fill(null);
    present.forEach((k, i) => {
      kappa[k] = finite(of[i]!.kappa);
      w[k] = of[i]!.winner;
    });
    oneVsRest = { kappa, winners: w };
  }

  const result: MdlsmResult = {
    name: 'mdlsm',
    definition: MDLSM_DEFINITION,
    K,
    classCounts,
    pairs: main.matrix,
    mean: main.mean,
    worst: main.worst,
    winners,
    candidates,
    winnerCounts,
    heldOut,
    null: nullBaseline,
    reduction: prep.reduction,
    params: { ...params, seed, permutations: P, trainFraction, exact: opts.exact ?? false },
  };
  if (oneVsRest) result.oneVsRest = oneVsRest;
  if (exact) result.exact = exact;
  return result;
}

function stack(A: FloatArray, B: FloatArray, d: number): { X: Float64Array; labels: Int32Array; m: number; n: number } {
  if (!Number.isInteger(d) || d < 1) throw new UsageError(`pairKappa: d must be a positive integer, got ${d}`);
  if (A.length % d !== 0 || B.length % d !== 0) throw new UsageError(`pairKappa: ${A.length} and ${B.length} values are not whole rows of width ${d}`);
  const m = A.length / d;
  const n = B.length / d;
  const X = new Float64Array((m + n) * d);
  X.set(A, 0);
  X.set(B, m * d);
  const labels = new Int32Array(m + n);
  labels.fill(1, m);
  return { X, labels, m, n };
}

/**
 * κ(A, B) for two point sets (row-major m×d and n×d): the lower bound, its winning direction and
 * every candidate's κ_w. The guard and whitening use the two sets only.
 */
export async function pairKappa(A: FloatArray, B: FloatArray, d: number, opts: KappaOptions = {}): Promise<PairKappaResult> {
  const { X, labels, m, n } = stack(A, B, d);
  for (let i = 0; i < X.length; i++) if (!Number.isFinite(X[i]!)) throw new RuntimeFailure(`pairKappa: non-finite value at row ${Math.floor(i / d)}`);
  if (m === 0 || n === 0) throw new UsageError(`pairKappa: both sets need at least one point (got ${m} and ${n})`);
  const params = engineParams(opts);
  const rng = new Rng(opts.seed ?? 0);
  const prep = await prepare(X, m + n, d, m + n, opts, rng.int(0x100000000));
  const groups = groupsOf(prep.Z, prep.r, labels, 2);
  const problems: Problem[] = [{ a: [0], b: [1] }];
  const fits = await fit(groups, prep.r, problems, params, rng.int(0x100000000));
  if (opts.exact) await exactCheck(groups, prep.r, problems, fits, opts.lp);
  const f = fits[0]!;
  const candidates: Record<string, number | null> = {};
  for (const [c, v] of Object.entries(f.candidates)) candidates[c] = finite(v);
  return { kappa: finite(f.kappa), winner: f.winner, candidates, m, n, reduction: prep.reduction, definition: MDLSM_DEFINITION };
}

export interface SeparabilityMatrixResult {
  name: 'linear-separability';
  definition: string;
  K: number;
  /** K×K, symmetric, null on the diagonal and for classes without rows. */
  matrix: ({ separable: boolean | null; margin: number | null; status: string } | null)[][];
  /** Fraction of the decided pairs that are separable. */
  separableFraction: number | null;
  reduction: ReductionInfo;
  /** Rows per class the LPs ran on. */
  classCounts: number[];
}

/**
 * The exact LP (and hard-margin margin) for every class pair. The saturation guard applies as for
 * mdlsm (a separable verdict at d ≥ m + n − 1 says nothing); after a PCA reduction the LP runs on
 * the PCA scores, an orthogonal projection, so margins are distances within the kept space.
 */
export async function separabilityMatrix(samples: SampleMatrix, opts: GuardOptions & LpOptions & { seed?: number } = {}): Promise<SeparabilityMatrixResult> {
  checkSamples(samples);
  const { K, n: N, d, labels } = samples;
  const classCounts = counts(labels, K);
  const minRows = minPairRows(classCounts);
  const g = saturationGuard(d, minRows, opts);
  let coords: FloatArray = samples.X;
  let dim = d;
  let rank = d;
  if (g.k !== null && g.k < d) {
    const p = await prepareFeatures(samples.X, N, d, g.k, new Rng(opts.seed ?? 0).int(0x100000000));
    coords = p.Y;
    dim = p.dim;
    rank = p.r;
  }
  const rows: number[][] = Array.from({ length: K }, () => []);
  labels.forEach((y, i) => rows[y]!.push(i));
  const block = (k: number): Float64Array => {
    const out = new Float64Array(rows[k]!.length * dim);
    rows[k]!.forEach((i, t) => out.set(coords.subarray(i * dim, (i + 1) * dim), t * dim));
    return out;
  };
  const matrix = emptyMatrix<{ separable: boolean | null; margin: number | null; status: string }>(K);
  let decided = 0;
  let separable = 0;
  for (let k = 0; k < K; k++) {
    for (let l = k + 1; l < K; l++) {
      if (classCounts[k] === 0 || classCounts[l] === 0) continue;
      const r = await lpSeparable(block(k), block(l), dim, opts);
      const cell = { separable: r.separable, margin: r.margin ?? null, status: r.status };
      matrix[k]![l] = matrix[l]![k] = cell;
      if (r.separable !== null) {
        decided++;
        if (r.separable) separable++;
      }
    }
  }
  return {
    name: 'linear-separability',
    definition: LP_DEFINITION,
    K,
    matrix,
    separableFraction: decided > 0 ? separable / decided : null,
    classCounts,
    reduction: { reduction: g.reduction, reason: g.reason, inputDim: d, dim, minPairRows: minRows, whitenedRank: rank, maxDimFraction: opts.maxDimFraction ?? DEFAULT_MAX_DIM_FRACTION },
  };
}
