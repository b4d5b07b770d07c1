/**
 * One trial of a phase-transition experiment: a union of subspaces and a random layer of the
 * widest width, asked "separable at width D?" for any D up to that width. Both tests read
 * prefixes of the same layer (nested widths), so the answer is monotone in D and a trial's
 * threshold can be found by bisection.
 */
import { UsageError } from '../../errors.js';
import { barrierSeparable } from './barrier.js';
import { gaussianLayerWeights, projectedWeights, randomLayer, type Activation } from '../../features/random-layer.js';
import type { QuadBlock } from './quad-block.js';
import { sampleLp, type SampleLp } from './sample-lp.js';
import { deriveSeed, STREAM } from '../../util/seed.js';
import { pairwiseAngles, unionOfSubspaces, uosBases } from './subspaces.js';

export type SeparabilityTest = 'exact' | 'sample';

export interface TrialSpec {
  d: number;
  r: number;
  K: number;
  /** Prescribed principal angle of the pair (radians); random subspaces when absent. */
  angle?: number;
  activation: Activation;
  test: SeparabilityTest;
  /** Widest layer tested. */
  Dmax: number;
  /** Sample test: points per class. */
  samplesPerClass?: number;
  noise?: number;
  seed: number;
}

export interface TrialProblem {
  /** true/false, or null when the solver could not decide. */
  separable(D: number): Promise<boolean | null>;
  /** Widths below this cannot separate (a proven necessary condition), so bisection may skip them. */
  readonly minPossible: number;
  dispose(): void;
}

/** Two of the subspaces share a nonzero vector (smallest principal angle ≈ 0): no layer separates them. */
function anyIntersection(bases: readonly Float64Array[], r: number, d: number): boolean {
  return pairwiseAngles(bases, bases.map(() => r), d).some((p) => p.angles[0]! < 1e-9);
}

export async function makeTrial(spec: TrialSpec): Promise<TrialProblem> {
  const { d, r, K, Dmax } = spec;
  const layerSeed = deriveSeed(spec.seed, STREAM.layer);
  if (spec.test === 'exact') {
    if (spec.activation !== 'quadratic') throw new UsageError(`the exact test is for the quadratic activation only (got ${spec.activation}); use the sample test`);
    if (spec.noise) throw new UsageError('the exact test needs noise-free subspaces; use the sample test with --noise');
    const { bases } = uosBases({ d, r, K, seed: spec.seed, ...(spec.angle !== undefined ? { angle: spec.angle } : {}) });
    const W = gaussianLayerWeights(Dmax, d, layerSeed);
    const G = bases.map((U) => projectedWeights(W, Dmax, d, U, r));
    // Two classes: one problem. K > 2: class k against the union of the others, for every k.
    const problems: QuadBlock[][] =
      K === 2
        ? [[{ G: G[0]!, r, sign: 1 }, { G: G[1]!, r, sign: -1 }]]
        : G.map((_, k) => G.map((Gj, j) => ({ G: Gj, r, sign: j === k ? 1 : -1 })));
    // A shared direction x puts the same feature in two classes, whatever the width.
    const never = anyIntersection(bases, r, d);
    return {
      // A_k(a) ≻ 0 needs r positive entries of a, A_j(a) ≺ 0 another r negative ones.
      minPossible: 2 * r,
      async separable(D: number) {
        if (never) return false;
        let undecided = false;
        for (const blocks of problems) {
          const res = barrierSeparable(blocks, D);
          if (res.separable === false) return false;
          if (res.separable === null) undecided = true;
        }
        return undecided ? null : true;
      },
      dispose() {},
    };
  }

  const n = spec.samplesPerClass;
  if (n === undefined) throw new UsageError('the sample test needs a number of samples per class');
  const uos = unionOfSubspaces({ d, r, K, n, seed: spec.seed, ...(spec.noise ? { noise: spec.noise } : {}), ...(spec.angle !== undefined ? { angle: spec.angle } : {}) });
  const layer = randomLayer({ D: Dmax, d, activation: spec.activation, seed: layerSeed });
  const F = await layer.apply(uos.X, uos.n);
  const lps: SampleLp[] = [];
  const sides = K === 2 ? [0] : Array.from({ length: K }, (_, k) => k);
  try {
    for (const k of sides) lps.push(await sampleLp(F, uos.n, Dmax, Int8Array.from(uos.labels, (l) => (l === k ? 1 : -1))));
  } catch (e) {
    for (const lp of lps) lp.dispose();
    throw e;
  }
  return {
    minPossible: 1,
    async separable(D: number) {
      let undecided = false;
      for (const lp of lps) {
        const v = lp.solve(D).separable;
        if (v === false) return false;
        if (v === null) undecided = true;
      }
      return undecided ? null : true;
    },
    dispose() {
      for (const lp of lps) lp.dispose();
    },
  };
}

export interface TrialThreshold {
  /** Smallest separable width in [Dmin, Dmax]; null when not separable even at Dmax. */
  D: number | null;
  /** Separable already at Dmin (> 1): the true threshold may be lower. */
  belowRange: boolean;
  /** Solver calls that ended undecided (counted as inseparable). */
  undecided: number;
  tests: number;
}

/** Bisection for the smallest separable width, relying on monotonicity in D (nested layers). */
export async function trialThreshold(p: TrialProblem, Dmin: number, Dmax: number): Promise<TrialThreshold> {
  let undecided = 0;
  let tests = 0;
  const sep = async (D: number) => {
    tests++;
    const v = await p.separable(D);
    if (v === null) undecided++;
    return v === true;
  };
  if (!(await sep(Dmax))) return { D: null, belowRange: false, undecided, tests };
  // lo is known (or proven) inseparable, hi separable.
  let lo = Math.max(Dmin, p.minPossible) - 1;
  let hi = Dmax;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (await sep(mid)) hi = mid;
    else lo = mid;
  }
  return { D: hi, belowRange: hi === Dmin && Dmin > 1 && p.minPossible < Dmin, undecided, tests };
}
