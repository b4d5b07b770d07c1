/**
 * Numerical and effective rank of a layer's centred feature matrix (docs/metrics/rank.md), from the
 * sample buffer. Rows are centred on the buffer's own global mean in float64; singular values
 * come from the eigenvalues of the smaller float64 Gram (onnxruntime), which resolves them down
 * to about √(m·ε)·σ_max; anything below that is indistinguishable from 0 and is set to 0.
 */
import { centredRows, singularValues } from '../linalg/dense.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { DEFINITIONS, type MetricBasis, type MetricResult } from './types.js';

export interface RankOptions {
  /** Share of the singular-value sum the numerical rank must hold. Default 0.95. */
  energy?: number;
  /** Images the sample rows were drawn from (for `basis`: sampled when the rows are fewer). */
  population?: number;
}

export interface RankSpectrum {
  /** Descending, min(n, d) of them, after the resolution cut. */
  singularValues: Float64Array;
  numericalRank: number;
  effectiveRank: number;
}

/** Numerical rank and effective rank from a descending list of singular values. */
export function rankFromSingularValues(s: Float64Array, energy = 0.95): { numericalRank: number; effectiveRank: number } {
  let total = 0;
  for (const v of s) total += v;
  if (!(total > 0)) return { numericalRank: 0, effectiveRank: 0 };
  let r = 0;
  let acc = 0;
  // The small relative allowance keeps an exact split (equal singular values) from counting one
  // more on rounding.
  while (r < s.length && acc < energy * total * (1 - 1e-12)) acc += s[r++]!;
  let h = 0;
  let positive = 0;
  for (const v of s) {
    if (v <= 0) continue;
    positive++;
    const p = v / total;
    h -= p * Math.log(p);
  }
  // exp(entropy) of `positive` values is at most `positive`; rounding must not push it above.
  return { numericalRank: r, effectiveRank: Math.min(positive, Math.exp(h)) };
}

/** Singular values of the centred rows of X (n×d), cut at the Gram's resolution. */
export async function centredSpectrum(X: Float32Array | Float64Array, n: number, d: number): Promise<Float64Array> {
  const s = await singularValues(centredRows(X, n, d).centred, n, d);
  const m = s.length;
  const floor = m > 0 ? Math.sqrt(m * Number.EPSILON) * s[0]! : 0;
  return s.map((v) => (v > floor ? v : 0));
}

export async function rankSpectrum(samples: Pick<SampleMatrix, 'X' | 'n' | 'd'>, opts: RankOptions = {}): Promise<RankSpectrum> {
  const s = await centredSpectrum(samples.X, samples.n, samples.d);
  return { singularValues: s, ...rankFromSingularValues(s, opts.energy ?? 0.95) };
}

/** [numerical rank, effective rank] of the sample matrix. */
export async function rank(samples: Pick<SampleMatrix, 'X' | 'n' | 'd'>, opts: RankOptions = {}): Promise<MetricResult[]> {
  const energy = opts.energy ?? 0.95;
  const spec = await rankSpectrum(samples, { energy });
  const detail = {
    n: samples.n,
    d: samples.d,
    energy,
    topSingularValues: Array.from(spec.singularValues.subarray(0, 32)),
  };
  // A rank is a property of the rows it was computed on: at most min(n, d), so the row count is
  // part of the number.
  const sampled = opts.population === undefined || samples.n < opts.population;
  const basis: MetricBasis = { n: samples.n, sampled, note: `singular values of ${samples.n} ${sampled ? 'buffered ' : ''}rows${opts.population !== undefined && sampled ? ` of ${opts.population}` : ''} (rank ≤ ${Math.min(samples.n, samples.d)})` };
  return [
    { name: 'numerical_rank', value: spec.numericalRank, definition: DEFINITIONS.numericalRank, basis, detail },
    { name: 'effective_rank', value: spec.effectiveRank, definition: DEFINITIONS.effectiveRank, basis, detail: { n: samples.n, d: samples.d } },
  ];
}
