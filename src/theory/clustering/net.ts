/**
 * Weight clustering, the network and its measurements (docs/theory.md#theory-clustering): the
 * leaky-ReLU two-layer net without biases, folded weights, sign groups, cluster coherence, the
 * collapsed linear classifier, its agreement with the net and the agreement regime. The overview
 * of the experiment is in ./index.ts.
 */
import { UsageError } from '../../errors.js';

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

export function checkInputs(X: Float64Array, n: number, d: number, what: string): void {
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

