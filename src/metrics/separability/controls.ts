/**
 * The optimism controls of SCIENCE.md §3.1: maximising κ_w over w inflates κ above ½ even on
 * random labels, so every κ matrix is reported beside
 *   - a held-out κ: directions fitted on one stratified split, κ_w counted on the other;
 *   - a label-permutation baseline κ_null: the same procedure on permuted labels.
 */
import { Rng } from '../../util/rng.js';

export interface Split {
  train: Int32Array;
  test: Int32Array;
}

/**
 * Stratified split: in each class with at least 2 rows, round(fraction·n_k) rows (clamped to
 * [1, n_k − 1]) go to train, the rest to test; classes with fewer rows go to neither, so their
 * held-out κ is undefined rather than fitted and tested on the same row.
 */
export function stratifiedSplit(labels: Int32Array, K: number, trainFraction: number, rng: Rng): Split {
  const byClass: number[][] = Array.from({ length: K }, () => []);
  labels.forEach((y, i) => byClass[y]!.push(i));
  const train: number[] = [];
  const test: number[] = [];
  for (const rows of byClass) {
    if (rows.length < 2) continue;
    rng.shuffle(rows);
    const t = Math.min(rows.length - 1, Math.max(1, Math.round(trainFraction * rows.length)));
    train.push(...rows.slice(0, t));
    test.push(...rows.slice(t));
  }
  return { train: Int32Array.from(train.sort((a, b) => a - b)), test: Int32Array.from(test.sort((a, b) => a - b)) };
}

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
