/**
 * Phase-transition maps of P(separable) over the width D and one property of the data: the
 * intrinsic dimension r, the ambient dimension d, or the principal angle θ (docs/theory.md#theory-phase), with
 * the 50% threshold D* per column and, over r, the fitted slope of ln D* on ln r.
 *
 * Each (column, trial) draws its own subspaces and layer from a seed derived from the base seed,
 * the column value and the trial number, so a column reproduces alone and adding columns or
 * trials leaves the others unchanged. The widths of one trial are nested prefixes of one layer
 * (layer.ts), so separability is monotone in D and each trial's threshold — the smallest
 * separable width, at integer resolution — is found by bisection in O(log Dmax) tests. Every
 * cell of the grid then follows exactly: P(D) = share of trials whose threshold is ≤ D.
 * `exhaustive` tests every cell directly instead (for checking that shortcut).
 */
import { UsageError } from '../../errors.js';
import { linearFit } from '../../stats/line-fit.js';
import type { Activation } from '../../features/random-layer.js';
import { coverCapacity } from './sample-lp.js';
import { deriveSeed } from '../../util/seed.js';
import { makeTrial, trialThreshold, type SeparabilityTest } from './trial.js';

export type PhaseAxis = 'intrinsic' | 'ambient' | 'angle';
export const PHASE_AXES: readonly PhaseAxis[] = ['intrinsic', 'ambient', 'angle'];

export interface PhaseOptions {
  /** The property varied across columns (widths always form the rows). */
  vary: PhaseAxis;
  /** Column values: r (intrinsic), d (ambient) or θ in degrees (angle). */
  values: number[];
  /** Widths D shown in the grid (ascending). Thresholds are searched over [min, max] at unit resolution. */
  widths: number[];
  /** Fixed intrinsic dimension (when not varied). */
  r?: number;
  /** Fixed ambient dimension (when not varied). */
  d?: number;
  /** Fixed principal angle in degrees (when not varied); random subspaces when absent. */
  angleDeg?: number;
  K?: number;
  activation: Activation;
  /** Default: exact for the quadratic activation, sample otherwise. */
  test?: SeparabilityTest;
  trials: number;
  /** Sample test: points per class. Default 4·2(Dmax+1)/K, i.e. four times Cover's capacity in all. */
  samplesPerClass?: number;
  noise?: number;
  seed: number;
  exhaustive?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface LogLogFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination of the line. */
  r2: number;
  /** Columns used (those with a finite D*). */
  points: number;
}

export interface PhaseColumn {
  value: number;
  r: number;
  d: number;
  angleDeg: number | null;
  /** P(separable) at each grid width. */
  probability: number[];
  /** Per trial: smallest separable width (null: none up to the largest width). Absent when exhaustive. */
  thresholds?: (number | null)[];
  /** Interpolated 50% width; null when P never reaches ½ in range, or is already ≥ ½ at the smallest width. */
  dStar: number | null;
  dStarNote?: string;
  /** r(r+1)/2: the dimension each class's quadratic features span. */
  featureDim: number;
  /**
   * r(r+1): width that separates two subspaces meeting only at 0 with probability 1 (quadratic
   * layer). Null for K > 2 classes: docs/theory.md#theory-phase states the guarantee for two subspaces only.
   */
  sureWidth: number | null;
  undecided: number;
  tests: number;
}

export interface PhaseResult {
  definition: string;
  vary: PhaseAxis;
  activation: Activation;
  test: SeparabilityTest;
  K: number;
  trials: number;
  seed: number;
  widths: number[];
  samplesPerClass: number | null;
  noise: number;
  exhaustive: boolean;
  columns: PhaseColumn[];
  /** Least-squares line of ln D* on ln r (vary = intrinsic, ≥ 2 finite D*). */
  fit: LogLogFit | null;
  /** max/min of the finite D* across columns (d or θ varied): 1 means D* does not move with it. */
  dStarSpread: number | null;
  elapsedMs: number;
}

export const PHASE_DEFINITION =
  'P(separable) of K union-of-subspaces classes after one random layer σ(Wx), W i.i.d. N(0,1), no bias (docs/theory.md#theory-phase); ' +
  'exact test: ∃a with A_k(a) ≻ 0 ≻ A_j(a) (quadratic layer, semidefinite programme); sample test: LP on the features of finite samples with an affine readout aᵀφ + b (one degree of freedom more than the exact test\'s aᵀφ; Cover\'s capacity 2(D+1) accordingly); ' +
  'D* = width where the trial-averaged P(separable) crosses ½ (linear interpolation).';

/** Least-squares line through (ln x, ln y), over the points where both are positive. */
export function logLogFit(xs: readonly number[], ys: readonly number[]): LogLogFit | null {
  const pts = xs.map((x, i) => [x, ys[i]!] as const).filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y));
  const fit = linearFit(pts.map(([x]) => Math.log(x)), pts.map(([, y]) => Math.log(y)));
  return fit ? { ...fit, points: pts.length } : null;
}

/**
 * The ½ crossing of an ascending (width, P) curve by linear interpolation; null with a note when
 * the curve is already ≥ ½ at its first width or never reaches ½.
 */
export function halfCrossing(widths: readonly number[], p: readonly number[]): { dStar: number | null; note?: string } {
  if (widths.length === 0) return { dStar: null, note: 'no widths' };
  if (p[0]! >= 0.5) return { dStar: null, note: `P(separable) ≥ ½ already at the smallest width ${widths[0]}` };
  for (let j = 1; j < widths.length; j++) {
    if (p[j]! >= 0.5) {
      const w0 = widths[j - 1]!;
      const w1 = widths[j]!;
      return { dStar: w0 + ((0.5 - p[j - 1]!) / (p[j]! - p[j - 1]!)) * (w1 - w0) };
    }
  }
  return { dStar: null, note: `P(separable) < ½ up to the largest width ${widths[widths.length - 1]}` };
}

/** P(threshold ≤ D) for each D. */
export function cdfAt(thresholds: readonly (number | null)[], widths: readonly number[]): number[] {
  const T = thresholds.length;
  return widths.map((D) => thresholds.filter((t) => t !== null && t <= D).length / T);
}

function checkWidths(widths: readonly number[]): number[] {
  if (widths.length === 0) throw new UsageError('phase: give at least one width');
  for (const w of widths) if (!Number.isInteger(w) || w < 1) throw new UsageError(`phase: widths must be positive integers, got ${w}`);
  return [...new Set(widths)].sort((a, b) => a - b);
}

const AXIS_CODE: Record<PhaseAxis, number> = { intrinsic: 1, ambient: 2, angle: 3 };

export async function phaseTransition(opts: PhaseOptions): Promise<PhaseResult> {
  const t0 = performance.now();
  const widths = checkWidths(opts.widths);
  const Dmin = widths[0]!;
  const Dmax = widths[widths.length - 1]!;
  const K = opts.K ?? 2;
  const test: SeparabilityTest = opts.test ?? (opts.activation === 'quadratic' ? 'exact' : 'sample');
  if (!Number.isInteger(opts.trials) || opts.trials < 1) throw new UsageError(`phase: trials must be a positive integer, got ${opts.trials}`);
  if (opts.values.length === 0) throw new UsageError('phase: give at least one value of the varied property');
  const samplesPerClass = test === 'sample' ? (opts.samplesPerClass ?? Math.ceil((4 * coverCapacity(Dmax)) / K)) : null;
  if (samplesPerClass !== null && K * samplesPerClass <= coverCapacity(Dmax)) {
    throw new UsageError(
      `phase: ${K}×${samplesPerClass} samples ≤ Cover's capacity 2(D+1) = ${coverCapacity(Dmax)} at the largest width: every sample would look separable`,
      `use --samples-per-class ≥ ${Math.ceil((4 * coverCapacity(Dmax)) / K)} (4× capacity)`,
    );
  }
  const total = opts.values.length * opts.trials;
  let done = 0;
  const columns: PhaseColumn[] = [];
  for (const value of opts.values) {
    const r = opts.vary === 'intrinsic' ? value : opts.r;
    const d = opts.vary === 'ambient' ? value : opts.d;
    const angleDeg = opts.vary === 'angle' ? value : opts.angleDeg;
    if (r === undefined || d === undefined) throw new UsageError('phase: give the fixed r and d (--r, --d)');
    if (!Number.isInteger(r) || r < 1 || !Number.isInteger(d) || d < 1) throw new UsageError(`phase: r and d must be positive integers (r=${r}, d=${d})`);
    if (r > d) throw new UsageError(`phase: r=${r} exceeds d=${d}`);
    const angle = angleDeg === undefined ? undefined : (angleDeg * Math.PI) / 180;
    const thresholds: (number | null)[] = [];
    const direct: number[] = widths.map(() => 0);
    let undecided = 0;
    let tests = 0;
    for (let trial = 0; trial < opts.trials; trial++) {
      const seed = deriveSeed(opts.seed, AXIS_CODE[opts.vary], value, trial);
      const p = await makeTrial({
        d,
        r,
        K,
        ...(angle !== undefined ? { angle } : {}),
        activation: opts.activation,
        test,
        Dmax,
        ...(samplesPerClass !== null ? { samplesPerClass } : {}),
        ...(opts.noise ? { noise: opts.noise } : {}),
        seed,
      });
      try {
        if (opts.exhaustive) {
          for (const [j, D] of widths.entries()) {
            tests++;
            const v = await p.separable(D);
            if (v === null) undecided++;
            if (v === true) direct[j]!++;
          }
        } else {
          const th = await trialThreshold(p, Dmin, Dmax);
          thresholds.push(th.D);
          undecided += th.undecided;
          tests += th.tests;
        }
      } finally {
        p.dispose();
      }
      opts.onProgress?.(++done, total);
    }
    let probability: number[];
    let crossing: { dStar: number | null; note?: string };
    if (opts.exhaustive) {
      probability = direct.map((c) => c / opts.trials);
      crossing = halfCrossing(widths, probability);
    } else {
      probability = cdfAt(thresholds, widths);
      // Thresholds are exact integers, so interpolate on every integer width in range.
      const all = Array.from({ length: Dmax - Dmin + 1 }, (_, i) => Dmin + i);
      crossing = halfCrossing(all, cdfAt(thresholds, all));
    }
    columns.push({
      value,
      r,
      d,
      angleDeg: angleDeg ?? null,
      probability,
      ...(opts.exhaustive ? {} : { thresholds }),
      dStar: crossing.dStar,
      ...(crossing.note ? { dStarNote: crossing.note } : {}),
      featureDim: (r * (r + 1)) / 2,
      sureWidth: K === 2 ? r * (r + 1) : null,
      undecided,
      tests,
    });
  }
  const finite = columns.filter((c) => c.dStar !== null);
  const fit = opts.vary === 'intrinsic' ? logLogFit(finite.map((c) => c.r), finite.map((c) => c.dStar!)) : null;
  const ds = finite.map((c) => c.dStar!);
  return {
    definition: PHASE_DEFINITION,
    vary: opts.vary,
    activation: opts.activation,
    test,
    K,
    trials: opts.trials,
    seed: opts.seed,
    widths,
    samplesPerClass,
    noise: opts.noise ?? 0,
    exhaustive: Boolean(opts.exhaustive),
    columns,
    fit,
    dStarSpread: opts.vary !== 'intrinsic' && ds.length >= 2 ? Math.max(...ds) / Math.min(...ds) : null,
    elapsedMs: performance.now() - t0,
  };
}
