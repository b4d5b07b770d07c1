/**
 * Weight clustering, the data (docs/theory.md#theory-clustering): seeded linear-teacher points
 * with a margin, and the HiGHS check that they are linearly separable through the origin.
 */
import { RuntimeFailure, UsageError } from '../../errors.js';
import { Rng } from '../../util/rng.js';
import { sampleLp } from '../../metrics/baseline/sample-lp.js';
import { deriveSeed } from '../../util/seed.js';
import { checkInputs } from './net.js';

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

export const STREAM_CLUSTER = { teacher: 11, train: 12, test: 13, noise: 14, init: 15, random: 16 } as const;

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

