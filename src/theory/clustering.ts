/**
 * Weight clustering and linear decision boundaries (docs/theory.md#theory-clustering; Sarussi, Brutzkus, Globerson,
 * "Towards Understanding Learning in Neural Networks with Linear Teachers", arXiv 2101.02533).
 *
 * Network: N(x) = Σ_j v_j σ(w_jᵀx), W m×d row-major, v ∈ R^m, σ leaky ReLU with slope α ≥ 0
 * (σ(z) = z for z > 0, αz otherwise; α = 0 is ReLU). No biases: N is positively homogeneous.
 *
 * Measurements on given weights:
 * - folded weights w̃_j = |v_j| w_j; groups G+ = {j : v_j > 0}, G− = {j : v_j < 0} (v_j = 0: neither);
 * - cluster coherence C± = ‖Σ_{G±} w̃_j‖ / Σ_{G±} ‖w̃_j‖ ∈ [0, 1] (1 ⇔ the group is collinear);
 * - mean cosine of w̃_j to the group centroid (1/|G|)Σ_G w̃_j, over the group's neurons with w̃_j ≠ 0;
 * - collapsed linear classifier v_lin = Σ_{G+} w̃_j − Σ_{G−} w̃_j and the agreement
 *   P[sign N(x) = sign(v_linᵀx)] on given inputs (sign 0 counts as its own value);
 * - agreement regime: on a training point x_i, every neuron of G+ has the same activation sign
 *   (w_jᵀx_i > 0 or ≤ 0), and so does every neuron of G−; it "holds" when that is so on every point.
 *
 * Why collinear groups give a hyperplane: σ(cz) = cσ(z) for c ≥ 0, so Σ_{G+} v_jσ(w_jᵀx) =
 * Σ_{G+} σ(w̃_jᵀx); with w̃_j = c_j u this is σ(Uᵀx), U = Σ_{G+} w̃_j; likewise σ(Vᵀx) for G−, and
 * N(x) = σ(Uᵀx) − σ(Vᵀx) has the sign of (U − V)ᵀx because σ is strictly increasing when α > 0.
 * With α = 0 the sign can be 0 where v_linᵀx is not, and neurons can die: no such guarantee.
 *
 * Training (`trainClustering`): a seeded linear teacher (x ~ N(0, I_d), y = sign(w*ᵀx), the
 * teacher coordinate pushed out by a margin γ), full-batch gradient descent on the mean logistic
 * loss log(1 + e^{−yN(x)}) from a small initialisation, in plain float64 (the sizes here are
 * small: d ≤ ~50, m ≤ ~100, n ≤ ~2000). Written by hand rather than with TF.js so that every step
 * can be inspected (the activation pattern of every neuron on every training point is checked at
 * every step to find when the agreement regime first holds) and the run is bit-reproducible.
 * Before training, linear separability through the origin is decided with HiGHS (sample-lp.ts).
 */
import { RuntimeFailure, UsageError } from '../errors.js';
import { Rng } from '../util/rng.js';
import { sampleLp } from '../metrics/baseline/sample-lp.js';
import { deriveSeed } from '../util/seed.js';
import { csvLine } from '../report/csv.js';

export const CLUSTERING_DEFINITION =
  'weight clustering (docs/theory.md#theory-clustering, Sarussi et al. 2021): N(x) = Σ_j v_j σ(w_jᵀx), σ leaky ReLU (slope α); ' +
  'w̃_j = |v_j| w_j; G± = {j : v_j ≷ 0}; coherence C± = ‖Σ_{G±} w̃_j‖ / Σ_{G±} ‖w̃_j‖; mean cosine of w̃_j to the group centroid (w̃_j ≠ 0); ' +
  'v_lin = Σ_{G+} w̃_j − Σ_{G−} w̃_j; agreement = share of inputs with sign N(x) = sign(v_linᵀx); ' +
  'agreement regime on x_i: all neurons of G+ share the sign of w_jᵀx_i (> 0 vs ≤ 0), and all of G−';

export const RELU_WARNING =
  'α = 0 (plain ReLU): σ is not strictly increasing, so even exactly collinear groups need not give sign N(x) = sign(v_linᵀx) ' +
  '(N(x) = 0 wherever both groups are off), and neurons can die (w_jᵀx_i ≤ 0 on every training point: no gradient ever again); ' +
  'the clustering → linear boundary result of docs/theory.md#theory-clustering assumes α > 0 and gives no guarantee here';

// ---------------------------------------------------------------------------------------------
// Activation

export interface ClusteringActivation {
  name: 'leaky-relu' | 'relu';
  alpha: number;
  warnings: string[];
}

/** Leaky-ReLU slope when none is given. */
export const DEFAULT_ALPHA = 0.1;

const NOT_HOMOGENEOUS: Record<string, string> = {
  tanh: 'tanh is not positively homogeneous (tanh(cz) ≠ c·tanh(z) for c > 0)',
  sigmoid: 'sigmoid is not positively homogeneous (σ(cz) ≠ c·σ(z) for c > 0, and σ(0) ≠ 0)',
  logistic: 'sigmoid is not positively homogeneous (σ(cz) ≠ c·σ(z) for c > 0, and σ(0) ≠ 0)',
  gelu: 'gelu is not positively homogeneous (gelu(cz) ≠ c·gelu(z) for c > 0)',
  elu: 'elu is not positively homogeneous on z < 0 (c·(e^z − 1) ≠ e^{cz} − 1)',
  selu: 'selu is not positively homogeneous on z < 0',
  silu: 'silu/swish is not positively homogeneous (z·s(cz) ≠ z·s(z))',
  swish: 'silu/swish is not positively homogeneous (z·s(cz) ≠ z·s(z))',
  softplus: 'softplus is not positively homogeneous (log(1 + e^{cz}) ≠ c·log(1 + e^z))',
  quadratic: 'the quadratic activation is homogeneous of degree 2, not 1 (σ(cz) = c²σ(z)), and not monotone',
  square: 'the quadratic activation is homogeneous of degree 2, not 1 (σ(cz) = c²σ(z)), and not monotone',
  abs: '|z| is positively homogeneous but not monotone, so collinear groups do not give a hyperplane',
};

/**
 * The activation for the clustering analysis: leaky ReLU (slope α > 0, default 0.1) or ReLU
 * (α = 0, with a warning). Anything else is refused with the reason: the folding w̃_j = |v_j| w_j
 * needs σ(cz) = cσ(z) for c ≥ 0, and the hyperplane argument needs σ strictly increasing.
 */
export function clusteringActivation(name: string, alpha?: number): ClusteringActivation {
  const a = name.trim().toLowerCase().replace(/_/g, '-');
  const alias: Record<string, 'leaky-relu' | 'relu'> = { 'leaky-relu': 'leaky-relu', leaky: 'leaky-relu', leakyrelu: 'leaky-relu', lrelu: 'leaky-relu', relu: 'relu' };
  const kind = alias[a];
  if (!kind) {
    const why = NOT_HOMOGENEOUS[a];
    if (why) {
      throw new UsageError(
        `activation \`${name}\` cannot be analysed: ${why}; the folding w̃_j = |v_j| w_j and the collapsed linear classifier of docs/theory.md#theory-clustering need a positively homogeneous, increasing activation`,
        'use --activation leaky-relu (with --alpha > 0) or relu',
      );
    }
    throw new UsageError(`unknown activation \`${name}\` for the clustering analysis`, 'choose leaky-relu (slope --alpha > 0) or relu');
  }
  if (alpha !== undefined && !(Number.isFinite(alpha) && alpha >= 0)) {
    throw new UsageError(`--alpha must be a number ≥ 0 (the leaky slope), got ${alpha}`, alpha < 0 ? 'a negative slope makes σ non-monotone: the analysis needs σ increasing' : undefined);
  }
  if (kind === 'relu') {
    if (alpha !== undefined && alpha !== 0) throw new UsageError(`relu has slope 0; got --alpha ${alpha}`, `use --activation leaky-relu --alpha ${alpha}`);
    return { name: 'relu', alpha: 0, warnings: [RELU_WARNING] };
  }
  const al = alpha ?? DEFAULT_ALPHA;
  return { name: al === 0 ? 'relu' : 'leaky-relu', alpha: al, warnings: al === 0 ? [RELU_WARNING] : [] };
}

// ---------------------------------------------------------------------------------------------
// Measurements on given weights

export interface TwoLayerNet {
  d: number;
  m: number;
  /** m×d row-major: row j is w_j. */
  W: Float64Array;
  /** m output weights v_j. */
  v: Float64Array;
  /** Leaky slope α ≥ 0. */
  alpha: number;
}

function checkNet(net: TwoLayerNet): void {
  const { d, m, W, v, alpha } = net;
  if (!Number.isInteger(d) || d < 1 || !Number.isInteger(m) || m < 1) throw new UsageError(`two-layer net: d and m must be positive integers (got d = ${d}, m = ${m})`);
  if (W.length !== m * d) throw new UsageError(`two-layer net: W has ${W.length} values, expected m×d = ${m}×${d}`);
  if (v.length !== m) throw new UsageError(`two-layer net: v has ${v.length} values, expected m = ${m}`);
  if (!(alpha >= 0) || !Number.isFinite(alpha)) throw new UsageError(`two-layer net: slope α must be ≥ 0, got ${alpha}`);
}

function checkInputs(X: Float64Array, n: number, d: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || X.length !== n * d) throw new UsageError(`${what}: ${X.length} values for ${n}×${d}`);
}

/** N(x_i) for the n rows of X (n×d). */
export function netOutputs(net: TwoLayerNet, X: Float64Array, n: number): Float64Array {
  checkNet(net);
  checkInputs(X, n, net.d, 'network inputs');
  const { d, m, W, v, alpha } = net;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    let s = 0;
    for (let j = 0; j < m; j++) {
      const wo = j * d;
      let z = 0;
      for (let k = 0; k < d; k++) z += W[wo + k]! * X[xo + k]!;
      s += v[j]! * (z > 0 ? z : alpha * z);
    }
    out[i] = s;
  }
  return out;
}

/** Folded weights w̃_j = |v_j| w_j (m×d). */
export function foldedWeights(net: TwoLayerNet): Float64Array {
  checkNet(net);
  const { d, m, W, v } = net;
  const F = new Float64Array(m * d);
  for (let j = 0; j < m; j++) {
    const a = Math.abs(v[j]!);
    for (let k = 0; k < d; k++) F[j * d + k] = a * W[j * d + k]!;
  }
  return F;
}

export interface GroupMeasures {
  /** Number of neurons in the group. */
  size: number;
  /** ‖Σ w̃_j‖ / Σ ‖w̃_j‖; null for an empty group or one whose folded weights are all 0. */
  coherence: number | null;
  /** Mean over the group's neurons with w̃_j ≠ 0 of cos(w̃_j, centroid); null when undefined. */
  meanCosine: number | null;
  /** Σ_G w̃_j. */
  sum: Float64Array;
}

export interface ClusterMeasures {
  plus: GroupMeasures;
  minus: GroupMeasures;
  /** v_lin = Σ_{G+} w̃_j − Σ_{G−} w̃_j. */
  vLin: Float64Array;
}

function groupMeasures(F: Float64Array, d: number, members: number[]): GroupMeasures {
  const sum = new Float64Array(d);
  let normSum = 0;
  for (const j of members) {
    let nn = 0;
    for (let k = 0; k < d; k++) {
      const w = F[j * d + k]!;
      sum[k]! += w;
      nn += w * w;
    }
    normSum += Math.sqrt(nn);
  }
  let sumNorm = 0;
  for (let k = 0; k < d; k++) sumNorm += sum[k]! * sum[k]!;
  sumNorm = Math.sqrt(sumNorm);
  const coherence = members.length > 0 && normSum > 0 ? Math.min(1, sumNorm / normSum) : null;
  // The centroid (1/|G|)Σ w̃_j points along the sum; cosines do not depend on its length.
  let cosSum = 0;
  let counted = 0;
  if (sumNorm > 0) {
    for (const j of members) {
      let dot = 0;
      let nn = 0;
      for (let k = 0; k < d; k++) {
        const w = F[j * d + k]!;
        dot += w * sum[k]!;
        nn += w * w;
      }
      if (nn === 0) continue;
      cosSum += dot / (Math.sqrt(nn) * sumNorm);
      counted++;
    }
  }
  return { size: members.length, coherence, meanCosine: counted > 0 ? cosSum / counted : null, sum };
}

/** Groups G± = {j : v_j ≷ 0} (v_j = 0 in neither). */
export function signGroups(v: Float64Array): { plus: number[]; minus: number[] } {
  const plus: number[] = [];
  const minus: number[] = [];
  v.forEach((x, j) => {
    if (x > 0) plus.push(j);
    else if (x < 0) minus.push(j);
  });
  return { plus, minus };
}

/** Coherence, mean cosine and the collapsed classifier of a two-layer net's weights. */
export function clusterMeasures(net: TwoLayerNet): ClusterMeasures {
  const F = foldedWeights(net);
  const g = signGroups(net.v);
  const plus = groupMeasures(F, net.d, g.plus);
  const minus = groupMeasures(F, net.d, g.minus);
  const vLin = new Float64Array(net.d);
  for (let k = 0; k < net.d; k++) vLin[k] = plus.sum[k]! - minus.sum[k]!;
  return { plus, minus, vLin };
}

/** v_lin = Σ_{G+} w̃_j − Σ_{G−} w̃_j. */
export function collapsedLinear(net: TwoLayerNet): Float64Array {
  return clusterMeasures(net).vLin;
}

/**
 * Share of the n inputs (rows of X) on which sign N(x) = sign(v_linᵀx) (Math.sign of each, so an
 * output of exactly 0 agrees only with 0). NaN for n = 0.
 */
export function linearAgreement(net: TwoLayerNet, X: Float64Array, n: number, vLin: Float64Array = collapsedLinear(net)): number {
  if (vLin.length !== net.d) throw new UsageError(`linear agreement: v_lin has ${vLin.length} values, expected d = ${net.d}`);
  const out = netOutputs(net, X, n);
  let agree = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < net.d; k++) s += vLin[k]! * X[i * net.d + k]!;
    if (Math.sign(out[i]!) === Math.sign(s)) agree++;
  }
  return n > 0 ? agree / n : NaN;
}

export interface AgreementRegime {
  /** Share of the points on which both groups are sign-uniform. */
  fraction: number;
  /** Every point is (and there is at least one point). */
  holds: boolean;
  /** Per point: both groups sign-uniform there. */
  perPoint: Uint8Array;
}

/**
 * The agreement regime on points X (n×d): for each point, do all neurons of G+ share the sign of
 * w_jᵀx (active z > 0, or not), and all neurons of G− likewise?
 */
export function agreementRegime(net: TwoLayerNet, X: Float64Array, n: number): AgreementRegime {
  checkNet(net);
  checkInputs(X, n, net.d, 'agreement regime inputs');
  const { d, m, W, v } = net;
  const perPoint = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    // Per group: 0 none seen yet, 1 all active, 2 all inactive, 3 mixed.
    let gp = 0;
    let gm = 0;
    for (let j = 0; j < m; j++) {
      const vj = v[j]!;
      if (vj === 0) continue;
      let z = 0;
      for (let k = 0; k < d; k++) z += W[j * d + k]! * X[i * d + k]!;
      const s = z > 0 ? 1 : 2;
      if (vj > 0) gp |= s;
      else gm |= s;
    }
    if (gp !== 3 && gm !== 3) {
      perPoint[i] = 1;
      count++;
    }
  }
  return { fraction: n > 0 ? count / n : NaN, holds: n > 0 && count === n, perPoint };
}

// ---------------------------------------------------------------------------------------------
// Data

export interface LabelledPoints {
  /** n×d row-major. */
  X: Float64Array;
  /** ±1. */
  y: Int8Array;
  n: number;
}

export interface LinearTeacherOptions {
  d: number;
  /** Training points. */
  n: number;
  /** Test points (default n). */
  nTest?: number;
  /** Teacher margin γ ≥ 0: every point has |w*ᵀx| ≥ γ (‖w*‖ = 1). Default 0.5. */
  margin?: number;
  /** Share of training labels flipped (seeded), in [0, 0.5]; makes the data (usually) inseparable. Default 0. */
  labelNoise?: number;
  seed: number;
}

export interface LinearTeacherData {
  d: number;
  /** Unit teacher vector w*. */
  teacher: Float64Array;
  train: LabelledPoints;
  test: LabelledPoints;
  margin: number;
  labelNoise: number;
  /** Training labels flipped by labelNoise. */
  flipped: number;
}

const STREAM_CLUSTER = { teacher: 11, train: 12, test: 13, noise: 14, init: 15, random: 16 } as const;

function teacherPoints(teacher: Float64Array, d: number, n: number, margin: number, rng: Rng): LabelledPoints {
  const X = new Float64Array(n * d);
  const y = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let t = 0;
    for (let k = 0; k < d; k++) {
      const z = rng.normal();
      X[o + k] = z;
      t += z * teacher[k]!;
    }
    // Push the teacher coordinate out by the margin: t → sign(t)(|t| + γ).
    const s = t >= 0 ? 1 : -1;
    const shift = s * margin;
    for (let k = 0; k < d; k++) X[o + k]! += shift * teacher[k]!;
    y[i] = s;
  }
  return { X, y, n };
}

/**
 * Linearly separable synthetic data from a linear teacher: w* uniform on the unit sphere,
 * x = z + sign(w*ᵀz)·γ·w* with z ~ N(0, I_d) (the teacher coordinate pushed out by γ, the rest
 * Gaussian), y = sign(w*ᵀx); then a `labelNoise` share of the training labels flipped.
 */
export function linearTeacherData(opts: LinearTeacherOptions): LinearTeacherData {
  const { d, n, seed } = opts;
  const nTest = opts.nTest ?? n;
  const margin = opts.margin ?? 0.5;
  const labelNoise = opts.labelNoise ?? 0;
  if (!Number.isInteger(d) || d < 1) throw new UsageError(`--d must be a positive integer, got ${d}`);
  if (!Number.isInteger(n) || n < 2) throw new UsageError(`--n must be an integer ≥ 2 (training points), got ${n}`);
  if (!Number.isInteger(nTest) || nTest < 0) throw new UsageError(`--n-test must be an integer ≥ 0, got ${nTest}`);
  if (!(Number.isFinite(margin) && margin >= 0)) throw new UsageError(`--margin must be ≥ 0, got ${margin}`);
  if (!(labelNoise >= 0 && labelNoise <= 0.5)) throw new UsageError(`--label-noise must be in [0, 0.5], got ${labelNoise}`);
  const trng = new Rng(deriveSeed(seed, STREAM_CLUSTER.teacher));
  const teacher = new Float64Array(d);
  let nn = 0;
  while (nn === 0) {
    nn = 0;
    for (let k = 0; k < d; k++) {
      teacher[k] = trng.normal();
      nn += teacher[k]! * teacher[k]!;
    }
  }
  const norm = Math.sqrt(nn);
  for (let k = 0; k < d; k++) teacher[k]! /= norm;
  const train = teacherPoints(teacher, d, n, margin, new Rng(deriveSeed(seed, STREAM_CLUSTER.train)));
  const test = teacherPoints(teacher, d, nTest, margin, new Rng(deriveSeed(seed, STREAM_CLUSTER.test)));
  const flipped = Math.round(labelNoise * n);
  if (flipped > 0) {
    const order = Array.from({ length: n }, (_, i) => i);
    new Rng(deriveSeed(seed, STREAM_CLUSTER.noise)).shuffle(order);
    for (let i = 0; i < flipped; i++) train.y[order[i]!] = -train.y[order[i]!]! as -1 | 1;
  }
  return { d, teacher, train, test, margin, labelNoise, flipped };
}

// ---------------------------------------------------------------------------------------------
// Separability

export interface SeparabilityCheck {
  separable: boolean;
  definition: string;
  /** min_i y_i aᵀx_i of HiGHS's separator, box ‖a‖∞ ≤ 1, recomputed in float64 (> 0 when separable). */
  minSlack: number;
  /** A separating direction a (‖a‖∞ ≤ 1), when separable. */
  direction?: Float64Array;
}

export const SEPARABILITY_DEFINITION =
  'linear separability through the origin (the network has no biases): ∃a with y_i aᵀx_i > 0 for every training point; decided by the HiGHS LP of docs/metrics/separability.md#lp_separable_fraction (sample-lp.ts) ' +
  'on the points z_i = y_i x_i labelled +1 and −z_i labelled −1, which are affinely separable iff the data are separable through the origin';

/**
 * Decides whether the labelled points are linearly separable through the origin, with HiGHS.
 * Proven inseparable → `separable: false`; an LP that cannot decide → RuntimeFailure.
 */
export async function checkLinearlySeparable(points: LabelledPoints, d: number): Promise<SeparabilityCheck> {
  const { X, y, n } = points;
  checkInputs(X, n, d, 'separability check');
  if (y.length !== n) throw new UsageError(`separability check: ${y.length} labels for ${n} points`);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    if (y[i] !== 1 && y[i] !== -1) throw new UsageError('separability check: labels must be ±1');
    if (y[i] === 1) pos++;
  }
  if (pos === 0 || pos === n) {
    throw new UsageError(`the analysis needs both classes in the training data; all ${n} points have label ${pos === n ? '+1' : '−1'}`, 'use more training points (--n)');
  }
  // z_i = y_i x_i (+1) and −z_i (−1): affinely separable ⇔ ∃a: aᵀz_i > |b| ≥ 0 ⇔ separable through 0.
  const Z = new Float64Array(2 * n * d);
  const labels = new Int8Array(2 * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) {
      const z = y[i]! * X[i * d + k]!;
      Z[i * d + k] = z;
      Z[(n + i) * d + k] = -z;
    }
    labels[i] = 1;
    labels[n + i] = -1;
  }
  const lp = await sampleLp(Z, 2 * n, d, labels);
  let verdict;
  try {
    verdict = lp.solve(d);
  } finally {
    lp.dispose();
  }
  if (verdict.status === 'undecided' || verdict.separable === null) {
    throw new RuntimeFailure(
      `the LP (HiGHS) could not decide whether the ${n} training points are linearly separable (min slack ${verdict.minSlack}, dual bound ${verdict.upperBound})`,
      'try another --seed, a larger --margin, or fewer points',
    );
  }
  if (!verdict.separable) return { separable: false, definition: SEPARABILITY_DEFINITION, minSlack: verdict.minSlack };
  // Recheck the homogeneous separator a (the bias of the doubled problem is bounded by the slack).
  const a = verdict.a!;
  let minSlack = Infinity;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += a[k]! * X[i * d + k]!;
    minSlack = Math.min(minSlack, y[i]! * s);
  }
  if (!(minSlack > 0)) {
    throw new RuntimeFailure(`the LP (HiGHS) reported a separator that does not separate the training points in float64 (min slack ${minSlack})`, 'try another --seed or a larger --margin');
  }
  return { separable: true, definition: SEPARABILITY_DEFINITION, minSlack, direction: a };
}

// ---------------------------------------------------------------------------------------------
// Training

export interface ClusteringTrainOptions {
  /** Input dimension (synthetic data). Default 20. */
  d?: number;
  /** Hidden width. Default 40. */
  m?: number;
  /** Training points (synthetic data). Default 400. */
  n?: number;
  /** Test points (synthetic data). Default n. */
  nTest?: number;
  /** Random N(0, I_d) inputs for the agreement on random inputs. Default 2000. */
  nRandom?: number;
  /** Teacher margin γ (synthetic data). Default 0.5. */
  margin?: number;
  /** Share of flipped training labels (synthetic data). Default 0. */
  labelNoise?: number;
  /** Use these points instead of a synthetic teacher (labels ±1). */
  data?: { d: number; train: LabelledPoints; test?: LabelledPoints };
  /** 'leaky-relu' (default) or 'relu'; anything else is refused. */
  activation?: string;
  /** Leaky slope α (default 0.1). */
  alpha?: number;
  /** Gradient-descent steps (full batch: one step per epoch). Default 300. */
  epochs?: number;
  /** Learning rate. Default 0.5. */
  lr?: number;
  /** Initial scale: w_j ~ N(0, s²I_d/d) so ‖w_j‖ ≈ s, and (trained output layer) |v_j| = s. Default 1e-3. */
  initScale?: number;
  /**
   * 'trained' (default): both layers trained, v_j = ±s at init (half each sign);
   * 'fixed': v_j = ±1/√m (half each sign) held fixed, only W trained.
   */
  outputLayer?: 'trained' | 'fixed';
  /** Record every this many steps (and at 0 and at the end). Default max(1, epochs/20). */
  every?: number;
  seed?: number;
  /** Skip the LP check (for tests of the training loop only). */
  skipSeparabilityCheck?: boolean;
  onProgress?: (step: number, total: number) => void;
}

export interface ClusteringRecord {
  /** Gradient steps taken before this record. */
  step: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number | null;
  coherencePlus: number | null;
  coherenceMinus: number | null;
  meanCosinePlus: number | null;
  meanCosineMinus: number | null;
  agreementTrain: number;
  agreementTest: number | null;
  agreementRandom: number;
  /** Share of training points in the agreement regime. */
  regimeFraction: number;
  /** cos(v_lin, w*) for a synthetic teacher; null otherwise. */
  teacherCosine: number | null;
  groupPlus: number;
  groupMinus: number;
  /** ‖v_lin‖. */
  vLinNorm: number;
}

export interface ClusteringResult {
  definition: string;
  activation: 'leaky-relu' | 'relu';
  alpha: number;
  d: number;
  m: number;
  n: number;
  nTest: number;
  nRandom: number;
  margin: number | null;
  labelNoise: number | null;
  epochs: number;
  lr: number;
  initScale: number;
  outputLayer: 'trained' | 'fixed';
  every: number;
  seed: number;
  separability: { separable: boolean; definition: string; minSlack: number };
  /** First step s (weights after s updates) at which every training point was in the agreement regime; null if never. */
  regimeFirstStep: number | null;
  /** From this step on the regime held at every step to the end; null if it does not hold at the end. */
  regimeStableFrom: number | null;
  /** Steps (out of epochs + 1 weight states) at which the regime held on every training point. */
  regimeSteps: number;
  records: ClusteringRecord[];
  initial: ClusteringRecord;
  final: ClusteringRecord;
  /** Final weights. */
  net: TwoLayerNet;
  vLin: Float64Array;
  teacher: Float64Array | null;
  warnings: string[];
  elapsedMs: number;
}

/** Largest n·m·d·epochs accepted by `trainClustering` (about a few minutes of one core). */
export const MAX_WORK = 1e11;

function accuracy(out: Float64Array, y: Int8Array): number {
  let c = 0;
  for (let i = 0; i < out.length; i++) if (out[i]! * y[i]! > 0) c++;
  return out.length > 0 ? c / out.length : NaN;
}

function logistic(margin: number): number {
  return margin > 0 ? Math.log1p(Math.exp(-margin)) : -margin + Math.log1p(Math.exp(margin));
}

function positiveInt(flag: string, v: number, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function positive(flag: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new UsageError(`--${flag} must be a number > 0, got ${v}`);
  return v;
}

/**
 * Trains a small-init two-layer leaky-ReLU net on linearly separable data by full-batch gradient
 * descent on the logistic loss and records coherence, agreement and the agreement regime.
 * Refuses (UsageError) data that the LP proves inseparable and activations other than the
 * leaky-ReLU family; ReLU (α = 0) runs with a warning.
 */
export async function trainClustering(opts: ClusteringTrainOptions = {}): Promise<ClusteringResult> {
  const t0 = performance.now();
  const act = clusteringActivation(opts.activation ?? 'leaky-relu', opts.alpha);
  const alpha = act.alpha;
  const m = positiveInt('m', opts.m ?? 40);
  const epochs = positiveInt('epochs', opts.epochs ?? 300);
  const lr = positive('lr', opts.lr ?? 0.5);
  const initScale = positive('init-scale', opts.initScale ?? 1e-3);
  const every = positiveInt('every', opts.every ?? Math.max(1, Math.floor(epochs / 20)));
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${seed}`);
  const nRandom = positiveInt('n-random', opts.nRandom ?? 2000);
  const outputLayer = opts.outputLayer ?? 'trained';
  if (outputLayer !== 'trained' && outputLayer !== 'fixed') throw new UsageError(`output layer must be trained or fixed, got ${String(outputLayer)}`);
  if (m < 2) throw new UsageError(`--m must be at least 2 (one neuron per output sign), got ${m}`);

  let d: number;
  let train: LabelledPoints;
  let test: LabelledPoints | null;
  let teacher: Float64Array | null = null;
  let margin: number | null = null;
  let labelNoise: number | null = null;
  if (opts.data) {
    d = positiveInt('d', opts.data.d);
    train = opts.data.train;
    test = opts.data.test ?? null;
    checkInputs(train.X, train.n, d, 'training points');
    if (train.y.length !== train.n) throw new UsageError(`training points: ${train.y.length} labels for ${train.n} points`);
    if (test) {
      checkInputs(test.X, test.n, d, 'test points');
      if (test.y.length !== test.n) throw new UsageError(`test points: ${test.y.length} labels for ${test.n} points`);
    }
  } else {
    d = positiveInt('d', opts.d ?? 20);
    const data = linearTeacherData({ d, n: opts.n ?? 400, ...(opts.nTest !== undefined ? { nTest: opts.nTest } : {}), margin: opts.margin ?? 0.5, labelNoise: opts.labelNoise ?? 0, seed });
    train = data.train;
    test = data.test.n > 0 ? data.test : null;
    teacher = data.teacher;
    margin = data.margin;
    labelNoise = data.labelNoise;
  }
  const n = train.n;
  const work = n * m * d * epochs;
  if (work > MAX_WORK) {
    throw new UsageError(
      `n·m·d·epochs = ${n}·${m}·${d}·${epochs} ≈ ${work.toExponential(1)} is too much for this plain float64 trainer (limit ${MAX_WORK.toExponential(0)}, minutes of CPU)`,
      'reduce --n, --m, --d or --epochs (the phenomenon shows at d ≤ 50, m ≤ 100, n ≤ 2000, a few hundred steps)',
    );
  }
  for (let i = 0; i < train.X.length; i++) if (!Number.isFinite(train.X[i]!)) throw new UsageError(`training point ${Math.floor(i / d)} has a non-finite value`);

  let separability: ClusteringResult['separability'];
  if (opts.skipSeparabilityCheck) {
    separability = { separable: true, definition: 'not checked (skipSeparabilityCheck)', minSlack: NaN };
  } else {
    const sep = await checkLinearlySeparable(train, d);
    if (!sep.separable) {
      throw new UsageError(
        `the analysis needs linearly separable data, and these ${n} training points are not separable by a hyperplane through the origin (proven by the HiGHS LP)` +
          (labelNoise ? ` — ${Math.round(labelNoise * n)} labels were flipped by --label-noise ${labelNoise}` : ''),
        labelNoise ? 'use --label-noise 0 (docs/theory.md#theory-clustering studies linear teachers: separable data)' : 'the clustering result of docs/theory.md#theory-clustering is about linearly separable data (a linear teacher)',
      );
    }
    separability = { separable: true, definition: sep.definition, minSlack: sep.minSlack };
  }

  // Initialisation.
  const irng = new Rng(deriveSeed(seed, STREAM_CLUSTER.init));
  const W = new Float64Array(m * d);
  const wStd = initScale / Math.sqrt(d);
  for (let i = 0; i < W.length; i++) W[i] = wStd * irng.normal();
  const v = new Float64Array(m);
  const signs = Array.from({ length: m }, (_, j) => (j < Math.ceil(m / 2) ? 1 : -1));
  irng.shuffle(signs);
  const vScale = outputLayer === 'fixed' ? 1 / Math.sqrt(m) : initScale;
  for (let j = 0; j < m; j++) v[j] = signs[j]! * vScale;
  const net: TwoLayerNet = { d, m, W, v, alpha };

  const rrng = new Rng(deriveSeed(seed, STREAM_CLUSTER.random));
  const R = new Float64Array(nRandom * d);
  for (let i = 0; i < R.length; i++) R[i] = rrng.normal();

  const record = (step: number): ClusteringRecord => {
    const cm = clusterMeasures(net);
    const outTrain = netOutputs(net, train.X, n);
    let loss = 0;
    for (let i = 0; i < n; i++) loss += logistic(train.y[i]! * outTrain[i]!);
    loss /= n;
    let vn = 0;
    let tdot = 0;
    for (let k = 0; k < d; k++) {
      vn += cm.vLin[k]! * cm.vLin[k]!;
      if (teacher) tdot += cm.vLin[k]! * teacher[k]!;
    }
    vn = Math.sqrt(vn);
    return {
      step,
      loss,
      trainAccuracy: accuracy(outTrain, train.y),
      testAccuracy: test ? accuracy(netOutputs(net, test.X, test.n), test.y) : null,
      coherencePlus: cm.plus.coherence,
      coherenceMinus: cm.minus.coherence,
      meanCosinePlus: cm.plus.meanCosine,
      meanCosineMinus: cm.minus.meanCosine,
      agreementTrain: linearAgreement(net, train.X, n, cm.vLin),
      agreementTest: test ? linearAgreement(net, test.X, test.n, cm.vLin) : null,
      agreementRandom: linearAgreement(net, R, nRandom, cm.vLin),
      regimeFraction: agreementRegime(net, train.X, n).fraction,
      teacherCosine: teacher && vn > 0 ? tdot / vn : null,
      groupPlus: cm.plus.size,
      groupMinus: cm.minus.size,
      vLinNorm: vn,
    };
  };

  const records: ClusteringRecord[] = [record(0)];
  let regimeFirstStep: number | null = null;
  let regimeStableFrom: number | null = null;
  let regimeSteps = 0;
  const noteRegime = (step: number, holds: boolean) => {
    if (holds) {
      regimeSteps++;
      regimeFirstStep ??= step;
      regimeStableFrom ??= step;
    } else regimeStableFrom = null;
  };

  const X = train.X;
  const y = train.y;
  const z = new Float64Array(m);
  const gW = new Float64Array(m * d);
  const gv = new Float64Array(m);
  const trainV = outputLayer === 'trained';
  for (let step = 0; step < epochs; step++) {
    gW.fill(0);
    gv.fill(0);
    let allAgree = true;
    for (let i = 0; i < n; i++) {
      const xo = i * d;
      let out = 0;
      let gp = 0;
      let gm = 0;
      for (let j = 0; j < m; j++) {
        const wo = j * d;
        let s = 0;
        for (let k = 0; k < d; k++) s += W[wo + k]! * X[xo + k]!;
        z[j] = s;
        out += v[j]! * (s > 0 ? s : alpha * s);
        const bit = s > 0 ? 1 : 2;
        if (v[j]! > 0) gp |= bit;
        else if (v[j]! < 0) gm |= bit;
      }
      if (gp === 3 || gm === 3) allAgree = false;
      const yi = y[i]!;
      // d/dN of log(1 + e^{−yN}) / n.
      const mg = yi * out;
      const g = (-yi / n) * (mg > 0 ? Math.exp(-mg) / (1 + Math.exp(-mg)) : 1 / (1 + Math.exp(mg)));
      for (let j = 0; j < m; j++) {
        const s = z[j]!;
        if (trainV) gv[j]! += g * (s > 0 ? s : alpha * s);
        const c = g * v[j]! * (s > 0 ? 1 : alpha);
        if (c === 0) continue;
        const wo = j * d;
        for (let k = 0; k < d; k++) gW[wo + k]! += c * X[xo + k]!;
      }
    }
    noteRegime(step, allAgree);
    for (let i = 0; i < W.length; i++) W[i]! -= lr * gW[i]!;
    if (trainV) for (let j = 0; j < m; j++) v[j]! -= lr * gv[j]!;
    for (let i = 0; i < W.length; i++) {
      if (!Number.isFinite(W[i]!)) throw new RuntimeFailure(`training diverged at step ${step + 1} (non-finite weights)`, 'lower --lr');
    }
    const done = step + 1;
    if (done % every === 0 || done === epochs) records.push(record(done));
    opts.onProgress?.(done, epochs);
  }
  noteRegime(epochs, agreementRegime(net, X, n).holds);

  const warnings = [...act.warnings];
  const final = records[records.length - 1]!;
  if (final.trainAccuracy < 1) warnings.push(`training accuracy is ${final.trainAccuracy.toFixed(4)} after ${epochs} steps: the net has not separated the data yet; try more --epochs or a larger --lr`);
  if (alpha === 0) {
    let dead = 0;
    for (let j = 0; j < m; j++) {
      let alive = false;
      for (let i = 0; i < n && !alive; i++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += W[j * d + k]! * X[i * d + k]!;
        if (s > 0) alive = true;
      }
      if (!alive) dead++;
    }
    if (dead > 0) warnings.push(`${dead} of ${m} ReLU neurons are dead at the end (inactive on every training point)`);
  }
  return {
    definition: CLUSTERING_DEFINITION,
    activation: act.name,
    alpha,
    d,
    m,
    n,
    nTest: test ? test.n : 0,
    nRandom,
    margin,
    labelNoise,
    epochs,
    lr,
    initScale,
    outputLayer,
    every,
    seed,
    separability,
    regimeFirstStep,
    regimeStableFrom,
    regimeSteps,
    records,
    initial: records[0]!,
    final,
    net: { d, m, W: Float64Array.from(W), v: Float64Array.from(v), alpha },
    vLin: collapsedLinear(net),
    teacher,
    warnings,
    elapsedMs: performance.now() - t0,
  };
}

const CSV_COLUMNS: [string, (r: ClusteringRecord) => number | null][] = [
  ['step', (r) => r.step],
  ['loss', (r) => r.loss],
  ['train_accuracy', (r) => r.trainAccuracy],
  ['test_accuracy', (r) => r.testAccuracy],
  ['coherence_plus', (r) => r.coherencePlus],
  ['coherence_minus', (r) => r.coherenceMinus],
  ['mean_cosine_plus', (r) => r.meanCosinePlus],
  ['mean_cosine_minus', (r) => r.meanCosineMinus],
  ['agreement_train', (r) => r.agreementTrain],
  ['agreement_test', (r) => r.agreementTest],
  ['agreement_random', (r) => r.agreementRandom],
  ['regime_fraction', (r) => r.regimeFraction],
  ['teacher_cosine', (r) => r.teacherCosine],
  ['group_plus', (r) => r.groupPlus],
  ['group_minus', (r) => r.groupMinus],
  ['vlin_norm', (r) => r.vLinNorm],
];

/** The time series as CSV (one row per record; empty cells for undefined values). */
export function clusteringCsv(res: ClusteringResult): string {
  return [CSV_COLUMNS.map((c) => c[0]).join(','), ...res.records.map((r) => csvLine(CSV_COLUMNS.map((c) => c[1](r))))].join('\n') + '\n';
}
