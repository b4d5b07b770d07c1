/**
 * What the random-layer baseline reads from a layer's input h_{l−1} (a labelled sample matrix;
 * docs/metrics/baseline.md, docs/theory.md): each class's energy rank r̂_k of the centred class at
 * several energy levels (from one eigendecomposition per class), the principal angles between the
 * classes' top-r̂ subspaces at the verdict's level, and the width placed against the predicted
 * threshold D*(max r̂). `randomLayerBaseline` adds one random layer of the trained layer's width
 * and activation applied to the same input (the audit draws several: pipeline/baseline.ts).
 *
 * Real classes are not subspaces through 0: r̂ is taken on the centred class (the spread around
 * its mean), and the law is a yardstick for how wide the layer is relative to the data, not a
 * prediction of its accuracy. r̂ for the ratio is the largest class rank (the hardest class).
 */
import { UsageError } from '../../errors.js';
import { centredRows, symEigenvalues, symTopEig } from '../../linalg/dense.js';
import { gram, outerGram } from '../../linalg/ort-ops.js';
import { randomLayer, type Activation } from '../../features/random-layer.js';
import { energyRankFromSquares } from './energy-rank.js';
import { orthonormalColumns, principalAngles } from './subspaces.js';
import { ENERGY_LEVELS, predictedThreshold, VERDICT_ENERGY, type RankAtEnergy } from './threshold.js';

export const BASELINE_DEFINITION =
  'random-layer baseline (docs/metrics/baseline.md): per-class energy rank r̂ of the centred layer input (95% of Σσ² unless stated), principal angles between the top-r̂ class subspaces, ' +
  'a random N(0,1) layer of the same width and activation applied to the same input, and width / D*(max r̂) with D*(r) = 1.25·r(r+1)/2 (quadratic), ×2 for ReLU-like activations';

export interface BaselineInput {
  /** n×d row-major. */
  X: Float32Array | Float64Array;
  n: number;
  d: number;
  labels: Int32Array;
  K: number;
  ids?: Int32Array;
}

export interface PairAngleSummary {
  k: number;
  l: number;
  /** Smallest and mean principal angle between the top-r̂_k and top-r̂_l subspaces, degrees. */
  minDeg: number;
  meanDeg: number;
}

export interface InputSubspaces {
  /** Energy rank of each class's centred input at `energy` (0 for a class without rows). */
  perClassRank: number[];
  /** max_k r̂_k at `energy`, the rank the width is compared against. */
  rHat: number;
  energy: number;
  /** r̂, D* and D/D* at every level of ENERGY_LEVELS (and `energy`), ascending. */
  levels: RankAtEnergy[];
  principalAngles: {
    pairs: PairAngleSummary[];
    /** Smallest principal angle over all pairs, and the mean of the pairs' mean angles. */
    minDeg: number | null;
    meanDeg: number | null;
  };
  /** D*(r̂) from predictedThreshold; null for tanh or r̂ = 0. */
  predictedThreshold: number | null;
  /** width / D*(r̂): above 1 the layer is wider than a random layer needs for subspaces of rank r̂. */
  widthRatio: number | null;
}

/**
 * Squared singular values (descending) of C (n×d) and a way to read its top-m right singular
 * vectors (d×m, orthonormal), from one eigendecomposition of the smaller Gram.
 */
async function classSpectrum(C: Float64Array, n: number, d: number): Promise<{ sq: number[]; basis(m: number): Float64Array }> {
  // Every eigenvalue is needed, but only the m leading vectors: values alone, then the m pairs
  // (two tridiagonalisations cost far less than one full set of n vectors).
  if (n < d) {
    const G = await outerGram(C, n, d);
    const sq = Array.from(symEigenvalues(G, n), (v) => Math.max(0, v));
    return {
      sq,
      basis(m) {
        const vectors = symTopEig(G, n, m).vectors;
        // v_j = Cᵀu_j / σ_j, then one orthonormalisation pass for rounding.
        const V = new Float64Array(d * m);
        for (let j = 0; j < m; j++) {
          const s = Math.sqrt(sq[j]!);
          for (let i = 0; i < n; i++) {
            const u = vectors[i * m + j]! / s;
            if (u === 0) continue;
            for (let c = 0; c < d; c++) V[c * m + j]! += u * C[i * d + c]!;
          }
        }
        return orthonormalColumns(V, d, m);
      },
    };
  }
  const G = await gram(C, n, d);
  return { sq: Array.from(symEigenvalues(G, d), (v) => Math.max(0, v)), basis: (m) => symTopEig(G, d, m).vectors };
}


/** The energy levels inputSubspaces reports (ENERGY_LEVELS and the verdict's level), ascending. */
export function ladderEnergies(energy = VERDICT_ENERGY): number[] {
  return [...new Set([...ENERGY_LEVELS, energy])].sort((a, b) => a - b);
}

/**
 * Per-class energy ranks of the centred input at each of `energies` (ranks[e][k]), and the top
 * basis of each class at `anglesAt` when asked (for principal angles).
 */
export async function classRankLadder(input: BaselineInput, energies: readonly number[], anglesAt?: number): Promise<{ ranks: number[][]; bases: (Float64Array | null)[] }> {
  const { X, n, d, labels, K } = input;
  if (X.length !== n * d) throw new UsageError(`baseline: input has ${X.length} values, expected ${n}×${d}`);
  if (labels.length !== n) throw new UsageError(`baseline: ${labels.length} labels for ${n} rows`);
  const ranks: number[][] = energies.map(() => []);
  const bases: (Float64Array | null)[] = [];
  for (let k = 0; k < K; k++) {
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] === k) rows.push(i);
    if (rows.length < 2) {
      for (const r of ranks) r.push(0);
      bases.push(null);
      continue;
    }
    const C = centredRows(X, n, d, rows).centred;
    const spec = await classSpectrum(C, rows.length, d);
    energies.forEach((e, i) => ranks[i]!.push(energyRankFromSquares(spec.sq, e)));
    const rk = anglesAt === undefined ? 0 : ranks[energies.indexOf(anglesAt)]![k]!;
    bases.push(rk === 0 ? null : spec.basis(rk));
  }
  return { ranks, bases };
}

/**
 * Ranks at every energy level, principal angles at `energy` (unless `angles: false`: they cost
 * ten times the ranks), and the width against D*(r̂). `ladder` reuses ranks already computed for
 * the same input (classRankLadder over ladderEnergies(energy)).
 */
export async function inputSubspaces(
  input: BaselineInput,
  width: number,
  activation: Activation,
  energy = VERDICT_ENERGY,
  opts: { angles?: boolean; ladder?: number[][] } = {},
): Promise<InputSubspaces> {
  const { d, K } = input;
  const energies = ladderEnergies(energy);
  const wantAngles = opts.angles ?? true;
  const { ranks, bases } = opts.ladder && !wantAngles ? { ranks: opts.ladder, bases: [] as (Float64Array | null)[] } : await classRankLadder(input, energies, wantAngles ? energy : undefined);
  const levels: RankAtEnergy[] = energies.map((e, i) => {
    const perClass = ranks[i]!;
    const rHat = Math.max(0, ...perClass);
    const dStar = rHat > 0 ? predictedThreshold(rHat, activation) : null;
    return { energy: e, rHat, perClass, dStar, ratio: dStar === null ? null : width / dStar, subspacesFit: 2 * rHat <= d };
  });
  const perClassRank = ranks[energies.indexOf(energy)]!;
  const pairs: PairAngleSummary[] = [];
  for (let k = 0; k < K; k++) {
    for (let l = k + 1; l < K; l++) {
      const Uk = bases[k] ?? null;
      const Ul = bases[l] ?? null;
      if (!Uk || !Ul) continue;
      const ang = principalAngles(Uk, Ul, d, perClassRank[k]!, perClassRank[l]!);
      const deg = Array.from(ang, (a) => (a * 180) / Math.PI);
      pairs.push({ k, l, minDeg: Math.min(...deg), meanDeg: deg.reduce((a, b) => a + b, 0) / deg.length });
    }
  }
  const at = levels.find((l) => l.energy === energy)!;
  return {
    perClassRank,
    rHat: at.rHat,
    energy,
    levels,
    principalAngles: {
      pairs,
      minDeg: pairs.length ? Math.min(...pairs.map((p) => p.minDeg)) : null,
      meanDeg: pairs.length ? pairs.reduce((a, p) => a + p.meanDeg, 0) / pairs.length : null,
    },
    predictedThreshold: at.dStar,
    widthRatio: at.ratio,
  };
}

export interface RandomLayerBaselineOptions {
  input: BaselineInput;
  /** Width D of the trained layer. */
  width: number;
  activation: Activation;
  seed: number;
  /** Energy share of the rank. Default 0.95. */
  energy?: number;
}

export interface RandomLayerBaseline extends InputSubspaces {
  definition: string;
  /** The random layer applied to the same input: a SampleMatrix-like block of n×D features. */
  randomFeatures: { X: Float32Array; n: number; d: number; labels: Int32Array; K: number; ids?: Int32Array };
}

/** One random draw beside the input's subspace summary. */
export async function randomLayerBaseline(opts: RandomLayerBaselineOptions): Promise<RandomLayerBaseline> {
  const { input, width, activation, seed } = opts;
  const sub = await inputSubspaces(input, width, activation, opts.energy ?? VERDICT_ENERGY);
  const { X, n, d, labels, K } = input;
  const F = await randomLayer({ D: width, d, activation, seed }).apply(X instanceof Float32Array ? X : Float32Array.from(X), n);
  return { definition: BASELINE_DEFINITION, ...sub, randomFeatures: { X: F, n, d: width, labels, K, ...(input.ids ? { ids: input.ids } : {}) } };
}
