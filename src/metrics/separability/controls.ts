/**
 * The optimism controls of docs/metrics/separability.md: maximising κ_w over w inflates κ above ½ even on
 * random labels, so every κ matrix is reported beside
 *   - a held-out κ: directions fitted on one stratified split, κ_w counted on the other;
 *   - a label-permutation baseline κ_null: the same procedure on permuted labels.
 */
import { Rng } from '../../util/rng.js';

export { stratifiedSplit, type Split } from '../../stats/split.js';

/** A uniformly random permutation of the labels (class sizes kept). */
export function permutedLabels(labels: Int32Array, rng: Rng): Int32Array {
  const out = Int32Array.from(labels);
  rng.shuffle(out);
  return out;
}

/** Mean and sample standard deviation (n − 1; 0 for a single value). */
export function meanSd(values: number[]): { mean: number; sd: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, sd: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, sd: 0 };
  const v = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, sd: Math.sqrt(v) };
}
