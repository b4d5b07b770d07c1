/**
 * Random-layer baseline for a real layer (SCIENCE.md §4): from the layer's input h_{l−1}
 * (a labelled sample matrix), estimate each class's 95%-energy rank r̂_k and the principal angles
 * between the classes' top-r̂ subspaces; apply a random Gaussian layer of the trained layer's
 * width and activation to the same input (so the caller can measure its separability and probe
 * accuracy beside the trained layer's); and place the width against the predicted threshold.
 *
 * Predicted threshold D*(r) = 1.25·r(r+1)/2 for the quadratic layer: the fit of the exact-test
 * simulations (D* ≈ 1.1–1.4 × r(r+1)/2 for r = 2…12 at d = 40; `layerprobe theory phase`
 * reproduces it). ReLU-like activations (relu, leaky-relu, elu, gelu) need about twice that
 * (SCIENCE §4, and the sample-test phase maps agree), so 2.5·r(r+1)/2 for them. tanh gets none:
 * an odd activation without bias maps x and −x of one class to φ and −φ, and a linear readout
 * cannot put both on the positive side, so no width separates two subspaces through 0.
 *
 * Real classes are not subspaces through 0: r̂ is taken on the centred class (the spread around
 * its mean), and the law is a yardstick for how wide the layer is relative to the data, not a
 * prediction of its accuracy. r̂ for the ratio is the largest class rank (the hardest class).
 */
import { UsageError } from '../errors.js';
import { centredRows, symEigenvalues, symTopEig } from '../linalg/dense.js';
import { gram, outerGram } from '../linalg/ort-ops.js';
import { randomLayer, type Activation } from './layer.js';
import { energyRankFromSquares } from './rank.js';
import { orthonormalColumns, principalAngles } from './subspaces.js';

export const BASELINE_DEFINITION =
  'random-layer baseline (SCIENCE.md §4): per-class 95%-energy rank r̂ of the centred layer input, principal angles between the top-r̂ class subspaces, ' +
  'a random N(0,1) layer of the same width and activation applied to the same input, and width / D*(max r̂) with D*(r) = 1.25·r(r+1)/2 (quadratic), ×2 for ReLU-like activations';

/** The fitted threshold law D*(r); null where no width suffices (tanh). */
export function predictedThreshold(r: number, activation: Activation): number | null {
  const quad = (1.25 * r * (r + 1)) / 2;
  switch (activation) {
    case 'quadratic':
      return quad;
    case 'relu':
    case 'leaky-relu':
    case 'elu':
    case 'gelu':
      return 2 * quad;
    case 'tanh':
      return null;
  }
}

export interface BaselineInput {
  /** n×d row-major. */
  X: Float32Array | Float64Array;
  n: number;
  d: number;
  labels: Int32Array;
  K: number;
  ids?: Int32Array;
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

export interface PairAngleSummary {
  k: number;
  l: number;
  /** Smallest and mean principal angle between the top-r̂_k and top-r̂_l subspaces, degrees. */
  minDeg: number;
  meanDeg: number;
}

export interface RandomLayerBaseline {
  definition: string;
  /** 95%-energy rank of each class's centred input (0 for a class without rows). */
  perClassRank: number[];
  /** max_k r̂_k, the rank the width is compared against. */
  rHat: number;
  principalAngles: {
    pairs: PairAngleSummary[];
    /** Smallest principal angle over all pairs, and the mean of the pairs' mean angles. */
    minDeg: number | null;
    meanDeg: number | null;
  };
  /** The random layer applied to the same input: a SampleMatrix-like block of n×D features. */
  randomFeatures: { X: Float32Array; n: number; d: number; labels: Int32Array; K: number; ids?: Int32Array };
  /** D*(r̂) from predictedThreshold; null for tanh. */
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

export async function randomLayerBaseline(opts: RandomLayerBaselineOptions): Promise<RandomLayerBaseline> {
  const { input, width, activation, seed } = opts;
  const { X, n, d, labels, K } = input;
  const energy = opts.energy ?? 0.95;
  if (X.length !== n * d) throw new UsageError(`baseline: input has ${X.length} values, expected ${n}×${d}`);
  if (labels.length !== n) throw new UsageError(`baseline: ${labels.length} labels for ${n} rows`);
  const perClassRank: number[] = [];
  const bases: (Float64Array | null)[] = [];
  for (let k = 0; k < K; k++) {
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] === k) rows.push(i);
    if (rows.length < 2) {
      perClassRank.push(0);
      bases.push(null);
      continue;
    }
    const m = rows.length;
    const C = centredRows(X, n, d, rows).centred;
    const spec = await classSpectrum(C, m, d);
    const rk = energyRankFromSquares(spec.sq, energy);
    perClassRank.push(rk);
    bases.push(rk === 0 ? null : spec.basis(rk));
  }
  const pairs: PairAngleSummary[] = [];
  for (let k = 0; k < K; k++) {
    for (let l = k + 1; l < K; l++) {
      const Uk = bases[k];
      const Ul = bases[l];
      if (!Uk || !Ul) continue;
      const ang = principalAngles(Uk, Ul, d, perClassRank[k]!, perClassRank[l]!);
      const deg = Array.from(ang, (a) => (a * 180) / Math.PI);
      pairs.push({ k, l, minDeg: Math.min(...deg), meanDeg: deg.reduce((a, b) => a + b, 0) / deg.length });
    }
  }
  const layer = randomLayer({ D: width, d, activation, seed });
  const F = await layer.apply(X instanceof Float32Array ? X : Float32Array.from(X), n);
  const rHat = Math.max(0, ...perClassRank);
  const threshold = rHat > 0 ? predictedThreshold(rHat, activation) : null;
  return {
    definition: BASELINE_DEFINITION,
    perClassRank,
    rHat,
    principalAngles: {
      pairs,
      minDeg: pairs.length ? Math.min(...pairs.map((p) => p.minDeg)) : null,
      meanDeg: pairs.length ? pairs.reduce((a, p) => a + p.meanDeg, 0) / pairs.length : null,
    },
    randomFeatures: { X: F, n, d: width, labels, K, ...(input.ids ? { ids: input.ids } : {}) },
    predictedThreshold: threshold,
    widthRatio: threshold === null ? null : width / threshold,
  };
}
