/**
 * Per-class energy rank (docs/theory.md): the number of leading singular values of a class's
 * data matrix that hold a share (default 95%) of its Frobenius energy Σσ². (Not the numerical
 * rank of docs/metrics/rank.md, which counts the singular-value sum Σσ.) Computed centred (rows
 * minus the class mean: the spread the union-of-subspaces model describes) and uncentred (the
 * class mean as one more direction). Used by `theory rank` and by the audit's random-layer
 * baseline for the r̂ of a layer's input.
 */
import { UsageError } from '../../errors.js';
import { centredRows, singularValues } from '../../linalg/dense.js';

/** Smallest k with σ_1² + … + σ_k² ≥ energy·Σσ², from squared singular values in any order. */
export function energyRankFromSquares(sq: ArrayLike<number>, energy = 0.95): number {
  if (!(energy > 0 && energy <= 1)) throw new UsageError(`energy share must be in (0, 1], got ${energy}`);
  const v = Array.from(sq, (x) => Math.max(0, x)).sort((a, b) => b - a);
  const total = v.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return 0;
  let acc = 0;
  for (let k = 0; k < v.length; k++) {
    acc += v[k]!;
    // The small relative allowance keeps an exact 95% split from flipping on rounding.
    if (acc >= energy * total * (1 - 1e-12)) return k + 1;
  }
  return v.length;
}

/** Energy rank from singular values (descending or not). */
export function energyRank(s: ArrayLike<number>, energy = 0.95): number {
  return energyRankFromSquares(Array.from(s, (x) => x * x), energy);
}

export interface ClassRank {
  k: number;
  name?: string;
  n: number;
  /** Rank of the centred class matrix. */
  rank: number;
  /** Rank of the raw class matrix. */
  rankUncentred: number;
  /** Share of the centred energy in the top `rank` directions. */
  energyCaptured: number;
}

/** Rank of rows (n×d) of one class, centred and uncentred. */
export async function classRank(X: Float64Array, n: number, d: number, energy = 0.95): Promise<{ rank: number; rankUncentred: number; energyCaptured: number }> {
  const sc = await singularValues(centredRows(X, n, d).centred, n, d);
  const su = await singularValues(X, n, d);
  const rank = energyRank(sc, energy);
  return { rank, rankUncentred: energyRank(su, energy), energyCaptured: captured(Array.from(sc, (x) => x * x), rank) };
}

export function captured(sq: number[], k: number): number {
  const v = sq.map((x) => Math.max(0, x)).sort((a, b) => b - a);
  const total = v.reduce((a, b) => a + b, 0);
  return total > 0 ? v.slice(0, k).reduce((a, b) => a + b, 0) / total : 0;
}

/** Energy ranks of every class of a labelled sample matrix (rows n×d, labels 0..K−1). */
export async function classEnergyRanks(input: { X: Float32Array | Float64Array; n: number; d: number; labels: Int32Array; K: number }, energy = 0.95): Promise<ClassRank[]> {
  const { X, n, d, labels, K } = input;
  const out: ClassRank[] = [];
  for (let k = 0; k < K; k++) {
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] === k) rows.push(i);
    if (rows.length === 0) continue;
    const Xk = new Float64Array(rows.length * d);
    rows.forEach((i, t) => {
      for (let j = 0; j < d; j++) Xk[t * d + j] = X[i * d + j]!;
    });
    out.push({ k, n: rows.length, ...(await classRank(Xk, rows.length, d, energy)) });
  }
  return out;
}

