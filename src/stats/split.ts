/**
 * Seeded stratified train/held-out split, shared by the linear probe and the MD-LSM held-out κ.
 */
import type { Rng } from '../util/rng.js';

export interface Split {
  train: Int32Array;
  test: Int32Array;
}

/**
 * In each class with at least 2 rows, a shuffled round(fraction·n_k) rows (clamped to
 * [1, n_k − 1]) go to train, the rest to test, so both sides see every such class. A class with
 * a single row goes to train (`singletons: 'train'`, the probe: it can still be fitted) or to
 * neither side (`'drop'`, held-out κ: a pair fitted and tested on one row means nothing).
 */
export function stratifiedSplit(labels: Int32Array, K: number, trainFraction: number, rng: Rng, singletons: 'train' | 'drop' = 'drop'): Split {
  const byClass: number[][] = Array.from({ length: K }, () => []);
  labels.forEach((y, i) => byClass[y]!.push(i));
  const train: number[] = [];
  const test: number[] = [];
  for (const rows of byClass) {
    if (rows.length < 2) {
      if (singletons === 'train') train.push(...rows);
      continue;
    }
    rng.shuffle(rows);
    const t = Math.min(rows.length - 1, Math.max(1, Math.round(trainFraction * rows.length)));
    train.push(...rows.slice(0, t));
    test.push(...rows.slice(t));
  }
  return { train: Int32Array.from(train).sort(), test: Int32Array.from(test).sort() };
}
