/**
 * The sample test for any activation (docs/theory.md#theory-phase): are the features φ(x_i) of finitely many
 * points linearly separable? LP with HiGHS:
 *
 *   maximise t  subject to  y_i(aᵀφ_i + b) ≥ t for every point,  −1 ≤ a_j ≤ 1,  b free,  t ≤ 1.
 *
 * t* > 0 ⇔ strictly separable (scale-invariance: the box loses nothing). This is the LP of
 * docs/metrics/separability.md#lp_separable_fraction with a box instead of the margin 1; metrics/separability's `lpSeparable` solves
 * that one from CPLEX LP text, which costs about a second per call at a few hundred points and
 * stopped with status Unknown at 3200×200 here. The phase search solves the same point set at
 * many widths, so this keeps one persistent HiGHS model built from arrays and changes only the
 * bounds of the columns beyond the current width (a_j = 0 for j ≥ D), warm-starting each solve.
 *
 * Verdicts are checked outside HiGHS: `separable` recomputes min_i y_i(aᵀφ_i + b) > 0 in float64;
 * `inseparable` recomputes a bound from the row duals μ ≥ 0, rescaled to equal mass on each
 * side so the bias drops out: for every a in the box, min_i y_i(aᵀφ_i + b) ≤ ‖Σ_i μ_i y_i φ_i‖₁.
 *
 * The readout is affine (aᵀφ + b), where docs/theory.md#theory-phase writes aᵀφ: the same LP serves the
 * generic sample test (checked against separability's `lpSeparable`, which has a bias) and the
 * clustering analysis, which needs one. For the phase maps this is one degree of freedom more
 * than the exact quadratic test, and the capacity below counts it; the phase definition says so.
 *
 * Cover: N points in general position in R^D are affinely separable with probability 1 when
 * N ≤ D + 1 and with probability ≥ ½ up to N = 2(D + 1), whatever their labels. A sample test
 * says something about the classes only with N ≫ 2(D + 1); below that it is refused.
 */
import type { Model } from 'highs';
import { RuntimeFailure, UsageError } from '../../errors.js';
import { loadHighs } from '../../linalg/highs.js';

export interface SampleLpVerdict {
  separable: boolean | null;
  status: 'separable' | 'inseparable' | 'undecided';
  /** min_i y_i(aᵀφ_i + b) of the LP's readout, recomputed in float64 (box ‖a‖∞ ≤ 1). */
  minSlack: number;
  /** Proven upper bound on that quantity over the box (from the duals). */
  upperBound: number;
  a?: Float64Array;
  b?: number;
}

/** Cover's capacity for affine separators in R^D: 2(D + 1) points. */
export function coverCapacity(D: number): number {
  return 2 * (D + 1);
}

/**
 * One point set (features n×Dmax, labels ±1) kept as a HiGHS model; `solve(D)` tests the first
 * D feature columns. Call `dispose()` when done (HiGHS memory is not garbage-collected).
 */
export interface SampleLp {
  readonly n: number;
  readonly Dmax: number;
  solve(D: number): SampleLpVerdict;
  dispose(): void;
}

export async function sampleLp(features: Float64Array, n: number, Dmax: number, y: ArrayLike<number>): Promise<SampleLp> {
  if (features.length !== n * Dmax) throw new RuntimeFailure(`sample LP: ${features.length} feature values for ${n}×${Dmax}`);
  if (y.length !== n) throw new RuntimeFailure(`sample LP: ${y.length} labels for ${n} points`);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    if (y[i] !== 1 && y[i] !== -1) throw new RuntimeFailure('sample LP: labels must be ±1');
    if (y[i] === 1) pos++;
  }
  if (pos === 0 || pos === n) throw new RuntimeFailure('sample LP: both sides need at least one point');
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i]!)) throw new RuntimeFailure(`sample LP: non-finite feature at point ${Math.floor(i / Dmax)}`);
  }
  const highs = await loadHighs();
  const cols = Dmax + 2; // a_0..a_{Dmax−1}, b, t
  const B = Dmax;
  const T = Dmax + 1;
  const nnz = n * cols;
  const starts = new Int32Array(n + 1);
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const yi = y[i]!;
    for (let j = 0; j < Dmax; j++) {
      indices[k] = j;
      values[k++] = yi * features[i * Dmax + j]!;
    }
    indices[k] = B;
    values[k++] = yi;
    indices[k] = T;
    values[k++] = -1;
    starts[i + 1] = k;
  }
  const colLower = new Float64Array(cols).fill(-1);
  const colUpper = new Float64Array(cols).fill(1);
  colLower[B] = -highs.infinity;
  colUpper[B] = highs.infinity;
  colLower[T] = -highs.infinity;
  const colCost = new Float64Array(cols);
  colCost[T] = 1;
  const model: Model = highs.createModel({
    numCols: cols,
    numRows: n,
    sense: highs.constants.objectiveSense.maximize,
    colCost,
    colLower,
    colUpper,
    rowLower: new Float64Array(n),
    rowUpper: new Float64Array(n).fill(highs.infinity),
    matrix: { format: 'csr', numRows: n, numCols: cols, starts, indices, values },
  });
  model.options.set({ output_flag: false });
  let width = Dmax;
  let scale = 0;
  for (let i = 0; i < features.length; i++) scale += Math.abs(features[i]!);
  scale /= n;

  function setWidth(D: number): void {
    if (!Number.isInteger(D) || D < 1 || D > Dmax) throw new RuntimeFailure(`sample LP: width ${D} outside 1..${Dmax}`);
    if (D === width) return;
    for (let j = Math.min(D, width); j < Math.max(D, width); j++) {
      if (j >= D) model.changeColBounds(j, 0, 0);
      else model.changeColBounds(j, -1, 1);
    }
    width = D;
  }

  return {
    n,
    Dmax,
    solve(D: number): SampleLpVerdict {
      setWidth(D);
      const run = model.run();
      if (run.modelStatus !== highs.constants.modelStatus.optimal) {
        return { separable: null, status: 'undecided', minSlack: NaN, upperBound: NaN };
      }
      const sol = model.getSolution();
      const a = Float64Array.from(sol.colValue.subarray(0, D));
      const b = sol.colValue[B]!;
      let minSlack = Infinity;
      for (let i = 0; i < n; i++) {
        let s = b;
        for (let j = 0; j < D; j++) s += a[j]! * features[i * Dmax + j]!;
        minSlack = Math.min(minSlack, y[i]! * s);
      }
      // Dual bound with equal mass per side: Σ μ_i y_i = 0, so b cancels.
      let mPos = 0;
      let mNeg = 0;
      for (let i = 0; i < n; i++) {
        const mu = Math.abs(sol.rowDual[i] ?? 0);
        if (y[i] === 1) mPos += mu;
        else mNeg += mu;
      }
      let upperBound = Infinity;
      if (mPos > 0 && mNeg > 0) {
        const s = new Float64Array(D);
        for (let i = 0; i < n; i++) {
          const mu = Math.abs(sol.rowDual[i] ?? 0);
          if (mu === 0) continue;
          const w = y[i] === 1 ? mu / (2 * mPos) : -mu / (2 * mNeg);
          for (let j = 0; j < D; j++) s[j]! += w * features[i * Dmax + j]!;
        }
        upperBound = 0;
        for (let j = 0; j < D; j++) upperBound += Math.abs(s[j]!);
      }
      const sepFloor = 1e-12 * scale;
      if (minSlack > sepFloor) return { separable: true, status: 'separable', minSlack, upperBound, a, b };
      if (upperBound <= 1e-7 * scale) return { separable: false, status: 'inseparable', minSlack, upperBound };
      return { separable: null, status: 'undecided', minSlack, upperBound };
    },
    dispose() {
      model.dispose();
    },
  };
}

export interface SampleTestOptions {
  /** Run even with N ≤ 2(D + 1) points (the verdict is then about the sample, not the classes). */
  allowBelowCapacity?: boolean;
}

export interface SampleTestResult {
  separable: boolean | null;
  /** One-vs-all verdict per class (K > 2); for K = 2 one entry for class 0 vs class 1. */
  perClass: (boolean | null)[];
  N: number;
  D: number;
  /** N ≤ 2(D+1): separation is (almost) guaranteed by Cover's theorem whatever the classes. */
  belowCapacity: boolean;
  note?: string;
}

/**
 * LP sample test on features (N×D row-major) of labelled points: K = 2 as class 0 vs class 1,
 * K > 2 one-vs-all for every class (separable only if each class is).
 */
export async function sampleSeparable(
  input: { X: Float64Array | Float32Array; n: number; d: number; labels: Int32Array; K: number },
  opts: SampleTestOptions = {},
): Promise<SampleTestResult> {
  const { n, d: D, labels, K } = input;
  const belowCapacity = n <= coverCapacity(D);
  const note = belowCapacity
    ? `N = ${n} points ≤ Cover's capacity 2(D+1) = ${coverCapacity(D)}: random points of this many would be separable too; use N ≫ ${coverCapacity(D)}`
    : undefined;
  if (belowCapacity && !opts.allowBelowCapacity) {
    throw new UsageError(`sample separability test refused: ${note}`);
  }
  const X = input.X instanceof Float64Array ? input.X : Float64Array.from(input.X);
  const perClass: (boolean | null)[] = [];
  const sides = K === 2 ? [0] : Array.from({ length: K }, (_, k) => k);
  for (const k of sides) {
    const y = Int8Array.from(labels, (l) => (l === k ? 1 : -1));
    const lp = await sampleLp(X, n, D, y);
    try {
      perClass.push(lp.solve(D).separable);
    } finally {
      lp.dispose();
    }
  }
  const separable = perClass.every((v) => v === true) ? true : perClass.some((v) => v === false) ? false : null;
  return { separable, perClass, N: n, D, belowCapacity, ...(note ? { note } : {}) };
}
