/**
 * The exact separability test of a random quadratic layer on a union of subspaces (docs/theory.md#theory-phase;
 * §4), from the subspaces themselves: no samples. Two classes: ∃a with A_1(a) ≻ 0 ≻ A_2(a).
 * K > 2: one-vs-all — class k against the union of the others needs A_k(a) ≻ 0 and A_j(a) ≺ 0
 * for every j ≠ k — and the classes are separable when every class is.
 */
import { UsageError } from '../errors.js';
import { barrierSeparable } from '../metrics/baseline/barrier.js';
import { cuttingPlaneSeparable } from './cutting-plane.js';
import { projectedWeights } from '../features/random-layer.js';
import type { ExactResult, QuadBlock } from '../metrics/baseline/quad-block.js';
import { principalAngles } from '../metrics/baseline/subspaces.js';

export type ExactMethod = 'barrier' | 'cutting-plane';

export interface ExactTestInput {
  /** d×r_k orthonormal bases of the class subspaces. */
  bases: readonly Float64Array[];
  r: number | readonly number[];
  d: number;
  /** Layer weights, at least D rows of d (row-major); the first D rows are the layer. */
  W: Float64Array;
  D: number;
  /** Default 'barrier' (fast); 'cutting-plane' is the independent HiGHS cross-check. */
  method?: ExactMethod;
}

export interface ExactTestResult {
  separable: boolean | null;
  /** K = 2: one problem (class 0 positive); K > 2: class k against the rest, for each k. */
  problems: ExactResult[];
  /** Smallest margin over the problems (normalised, see ExactResult.margin). */
  margin: number;
}

/** Angle (radians) below which two subspaces count as sharing a direction. */
const INTERSECT = 1e-9;

export async function exactSeparable(input: ExactTestInput): Promise<ExactTestResult> {
  const { bases, d, W, D } = input;
  const K = bases.length;
  const r = typeof input.r === 'number' ? bases.map(() => input.r as number) : [...input.r];
  if (K < 2) throw new UsageError('exact test: needs at least two classes');
  if (W.length < D * d) throw new UsageError(`exact test: W has ${W.length / d} rows, width ${D} needs ${D}`);
  const G = bases.map((U, k) => projectedWeights(W, D, d, U, r[k]!));
  const sides = K === 2 ? [0] : bases.map((_, k) => k);
  const problems: ExactResult[] = [];
  for (const k of sides) {
    // A shared direction x puts the same feature in both classes: no readout separates them.
    const meets = bases.some((U, j) => j !== k && principalAngles(bases[k]!, U, d, r[k]!, r[j]!)[0]! < INTERSECT);
    if (meets) {
      problems.push({ separable: false, status: 'inseparable', proof: 'subspaces intersect', margin: -Infinity, bounds: [-Infinity, 0], iterations: 0 });
      continue;
    }
    const blocks: QuadBlock[] = G.map((Gj, j) => ({ G: Gj, r: r[j]!, sign: j === k ? 1 : -1 }));
    problems.push(input.method === 'cutting-plane' ? await cuttingPlaneSeparable(blocks, D) : barrierSeparable(blocks, D));
  }
  const separable = problems.every((p) => p.separable === true) ? true : problems.some((p) => p.separable === false) ? false : null;
  return { separable, problems, margin: Math.min(...problems.map((p) => p.margin)) };
}
