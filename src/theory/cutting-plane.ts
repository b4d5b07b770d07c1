/**
 * The exact quadratic-layer test (quad-block.ts) by cutting planes: a second, independent
 * solver beside the barrier method (barrier.ts), used to cross-check it. A readout separates
 * iff sign_k·A_k(a) ≻ 0 for every block; the problem is scale-invariant, so a box ‖a‖∞ ≤ 1
 * loses nothing and makes the optimisation bounded.
 *
 * Solved by Kelley's cutting planes: maximise t subject to vᵀ(sign_k A_k(a))v ≥ t for a growing
 * set of unit vectors v (each one linear in a), with HiGHS's dual simplex warm-started after each
 * round of new rows. After each LP the smallest eigenpairs of every sign_k·A_k(a) (r×r, symEig)
 * give the most violated cuts. It stops when
 *   - the eigenvalues of the LP's a are all > 0: a certificate, checked in float64; or
 *   - the cut relaxation proves that no a in the box reaches t > 0. The bound used is not the
 *     solver's objective but one recomputed from its row duals μ ≥ 0: for any such μ,
 *     max_a min_v c_v·a ≤ ‖Σ_v μ_v c_v‖₁ / Σ_v μ_v, so the verdict does not rest on HiGHS's
 *     tolerances beyond the stated `inseparableTol`.
 * Sound and simple, but Kelley's method needs many rounds of dense LPs near the phase boundary
 * (seconds at r = 14), hence the barrier method for the phase grids.
 */
import type { Highs, Model } from 'highs';
import { RuntimeFailure } from '../errors.js';
import { symEig } from '../linalg/dense.js';
import { loadHighs } from '../linalg/highs.js';
import { dot, norm } from '../linalg/kernels.js';
import { blockMatrix, checkBlocks, type ExactResult, type QuadBlock } from '../metrics/baseline/quad-block.js';

export interface ExactOptions {
  /** LP rounds before giving up with status `undecided`. Default 300. */
  maxIterations?: number;
  /**
   * Verdict `inseparable` when the proven bound on max_{‖a‖∞≤1} min_k λ_min(sign_k A_k(a)) is at
   * most this, relative to the mean squared row norm of the G_k (≈ r for a Gaussian layer).
   * Default 1e-7: about HiGHS's feasibility tolerance, far below the margins seen even next to
   * the phase transition.
   */
  inseparableTol?: number;
}

interface Cut {
  coef: Float64Array;
}

/** Coefficients of the cut vᵀ(sign·A(a))v = Σ_i a_i · sign·(g_iᵀv)², for a unit v. */
function cutCoefficients(block: QuadBlock, v: ArrayLike<number>, D: number): Float64Array {
  const { G, r, sign } = block;
  const c = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    const s = dot(G, v, r, i * r);
    c[i] = sign * s * s;
  }
  return c;
}

/** Adds rows Σ_i c_i a_i − t ≥ 0 in one call. */
function addCuts(highs: Highs, model: Model, cuts: readonly Cut[], D: number): void {
  if (cuts.length === 0) return;
  const nnz = cuts.length * (D + 1);
  const starts = new Int32Array(cuts.length + 1);
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let k = 0;
  cuts.forEach((cut, row) => {
    for (let i = 0; i < D; i++) {
      indices[k] = i;
      values[k++] = cut.coef[i]!;
    }
    indices[k] = D;
    values[k++] = -1;
    starts[row + 1] = k;
  });
  model.addRows({
    lower: new Float64Array(cuts.length),
    upper: new Float64Array(cuts.length).fill(highs.infinity),
    matrix: { format: 'csr', numRows: cuts.length, numCols: D + 1, starts, indices, values },
  });
}

/** ‖Σ_v μ_v c_v‖₁ / Σ_v μ_v with μ = |row duals|: a valid bound for any nonnegative μ. */
function dualBound(cuts: readonly Cut[], rowDual: Float64Array, D: number): number {
  const s = new Float64Array(D);
  let total = 0;
  cuts.forEach((cut, j) => {
    const mu = Math.abs(rowDual[j] ?? 0);
    if (mu === 0) return;
    total += mu;
    for (let i = 0; i < D; i++) s[i]! += mu * cut.coef[i]!;
  });
  if (!(total > 0)) return Infinity;
  let l1 = 0;
  for (let i = 0; i < D; i++) l1 += Math.abs(s[i]!);
  return l1 / total;
}

function unitColumn(vectors: Float64Array, r: number, j: number): Float64Array {
  const v = new Float64Array(r);
  let n = 0;
  for (let p = 0; p < r; p++) {
    v[p] = vectors[p * r + j]!;
    n += v[p]! * v[p]!;
  }
  n = Math.sqrt(n);
  for (let p = 0; p < r; p++) v[p]! /= n;
  return v;
}

/**
 * Is there a readout a ∈ R^D with sign_k·A_k(a) ≻ 0 for every block? (Two classes: blocks
 * [+G_1, −G_2]; one-vs-all for class k: +G_k and −G_j for every j ≠ k.)
 */
export async function cuttingPlaneSeparable(blocks: readonly QuadBlock[], D: number, opts: ExactOptions = {}): Promise<ExactResult> {
  checkBlocks(blocks, D);
  const maxIterations = opts.maxIterations ?? 300;
  let scale = 0;
  let bigness = 0;
  for (const b of blocks) {
    let s = 0;
    for (let i = 0; i < D * b.r; i++) s += b.G[i]! * b.G[i]!;
    scale = Math.max(scale, s / D);
    bigness = Math.max(bigness, s);
  }
  if (!(scale > 0)) throw new RuntimeFailure('exact quadratic test: the layer maps a class subspace to zero');
  const infTol = (opts.inseparableTol ?? 1e-7) * scale;
  // Eigenvalues of sign·A(a) are accurate to ~ε·Σ‖g_i‖² in float64; a certificate must clear that.
  const sepTol = 1e-12 * bigness;

  const highs = await loadHighs();
  const colLower = new Float64Array(D + 1).fill(-1);
  const colUpper = new Float64Array(D + 1).fill(1);
  colLower[D] = -highs.infinity;
  // t ≤ Σ‖g_i‖² always holds in the box; bounding it keeps every LP bounded.
  colUpper[D] = bigness;
  const colCost = new Float64Array(D + 1);
  colCost[D] = 1;
  const model = highs.createModel({
    numCols: D + 1,
    numRows: 0,
    sense: highs.constants.objectiveSense.maximize,
    colCost,
    colLower,
    colUpper,
    rowLower: [],
    rowUpper: [],
    matrix: { format: 'csr', numRows: 0, numCols: D + 1, starts: [0], indices: [], values: [] },
  });
  try {
    model.options.set({ output_flag: false });
    const cuts: Cut[] = [];
    // Start from the diagonal entries of every A_k: bounded and cheap.
    const first: Cut[] = [];
    for (const b of blocks) {
      for (let p = 0; p < b.r; p++) {
        const e = new Float64Array(b.r);
        e[p] = 1;
        first.push({ coef: cutCoefficients(b, e, D) });
      }
    }
    addCuts(highs, model, first, D);
    cuts.push(...first);

    let best = -Infinity;
    let bestLow = -Infinity;
    let upperBound = Infinity;
    for (let it = 1; it <= maxIterations; it++) {
      const run = model.run();
      if (run.modelStatus !== highs.constants.modelStatus.optimal) {
        throw new RuntimeFailure(`HiGHS returned model status ${run.modelStatus} in the exact quadratic test (D=${D}, round ${it})`);
      }
      const sol = model.getSolution();
      const a = sol.colValue.subarray(0, D);
      const tLp = sol.colValue[D]!;
      upperBound = Math.min(upperBound, dualBound(cuts, sol.rowDual, D));

      const fresh: Cut[] = [];
      let low = Infinity;
      for (const b of blocks) {
        const { values, vectors } = symEig(blockMatrix(b, a, D), b.r);
        low = Math.min(low, values[b.r - 1]!);
        // Every eigenvector whose eigenvalue sits below the LP's t is a violated cut.
        for (let j = b.r - 1; j >= 0 && values[j]! < tLp - 1e-9 * scale; j--) {
          fresh.push({ coef: cutCoefficients(b, unitColumn(vectors, b.r, j), D) });
        }
      }
      const na = norm(a, D);
      const normalised = na > 0 ? low / na : -Infinity;
      best = Math.max(best, normalised);
      bestLow = Math.max(bestLow, low);
      if (low > sepTol) {
        return { separable: true, status: 'separable', proof: 'certificate', certificate: Float64Array.from(a), margin: normalised, bounds: [low, upperBound], iterations: it };
      }
      if (upperBound <= infTol) {
        return { separable: false, status: 'inseparable', proof: 'lp bound', margin: Math.min(0, best), bounds: [Math.min(0, bestLow), upperBound], iterations: it };
      }
      if (fresh.length === 0) {
        // The LP's t is already attained (no violated cut) yet not positive: t ≤ 0 is the optimum.
        return { separable: false, status: 'inseparable', proof: 'tolerance', margin: Math.min(0, best), bounds: [Math.min(0, bestLow), Math.min(upperBound, Math.max(tLp, 0))], iterations: it };
      }
      addCuts(highs, model, fresh, D);
      cuts.push(...fresh);
    }
    return { separable: null, status: 'undecided', margin: Math.min(0, best), bounds: [Math.min(0, bestLow), upperBound], iterations: maxIterations };
  } finally {
    model.dispose();
  }
}
