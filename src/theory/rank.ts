/**
 * Per-class 95%-energy rank (docs/theory.md#theory-rank): the number of leading singular values of a class's
 * data matrix that hold 95% of its Frobenius energy Σσ². (Not the §2 numerical rank, which
 * counts the singular-value sum Σσ.) Computed centred (rows minus the class mean: the spread the
 * union-of-subspaces model describes) and uncentred (the class mean as one more direction).
 *
 * The authors' script (uos-linear-separability, image_dataset_svals.py) differs in three ways:
 * it uses the raw matrix (our `rankUncentred`), the norm ratio √(Σ_{≤k}σ²/Σσ²) ≥ 0.95 (energy
 * ≥ 0.9025: pass energy 0.9025), and prints numpy's 0-based argmax (one less than the count).
 *
 * Singular values come from the eigenvalues of the smaller float64 Gram: the n×n one when a
 * class has fewer rows than dimensions, otherwise the d×d one accumulated through onnxruntime
 * a batch at a time, so that memory stays K·d² whatever the number of images.
 */
import { RuntimeFailure } from '../errors.js';
import { symEigenvalues } from '../linalg/dense.js';
import { captured, classRank, energyRankFromSquares, type ClassRank } from '../metrics/baseline/energy-rank.js';
import { gram } from '../linalg/ort-ops.js';
import { openDataset, type OpenDatasetOptions } from '../data/open.js';
import { preprocess } from '../data/preprocess.js';
import { batchesOf, checkSamplingCounts, selectIndices } from '../data/sampling.js';

export { classEnergyRanks, classRank, energyRank, energyRankFromSquares, type ClassRank } from '../metrics/baseline/energy-rank.js';

export const RANK_DEFINITION =
  'per-class energy rank: smallest k whose top-k singular values hold the given share (default 95%) of Σσ² (Frobenius energy) of the class matrix (docs/theory.md#theory-rank)';

export interface DatasetRankOptions extends OpenDatasetOptions {
  dataset: string;
  /** Items per class (default: all of the split). */
  perClass?: number;
  seed?: number;
  energy?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface DatasetRankResult {
  definition: string;
  dataset: string;
  split?: string;
  energy: number;
  /** Values are pixels / 255 (ranks do not depend on the scale). */
  dimension: number;
  classes: ClassRank[];
}

interface Acc {
  n: number;
  expected: number;
  rows: Float64Array | null;
  gram: Float64Array | null;
  sum: Float64Array;
}

/** Per-class energy ranks of a dataset's raw pixels (scaled to [0, 1]), streamed batch by batch. */
export async function datasetClassRanks(opts: DatasetRankOptions): Promise<DatasetRankResult> {
  const energy = opts.energy ?? 0.95;
  checkSamplingCounts(opts);
  const ds = await openDataset(opts.dataset, opts);
  const K = ds.classes.length;
  const idx = selectIndices(ds.labels, K, { ...(opts.perClass !== undefined ? { perClass: opts.perClass } : {}), seed: opts.seed ?? 0 });
  const [h, w, c] = ds.itemShape;
  const d = h * w * c;
  const counts = new Array<number>(K).fill(0);
  for (const i of idx) counts[ds.labels[i]!]!++;
  // A class with no more rows than dimensions keeps its rows (n×n Gram later); others keep XᵀX.
  const acc: Acc[] = counts.map((m) => ({
    n: 0,
    expected: m,
    rows: m > 0 && m <= d ? new Float64Array(m * d) : null,
    gram: m > d ? new Float64Array(d * d) : null,
    sum: new Float64Array(d),
  }));
  let done = 0;
  for await (const batch of batchesOf(ds, idx, opts.batchSize ?? 512)) {
    const x = preprocess(batch, { scale: 255 }).data;
    const bn = batch.labels.length;
    for (let k = 0; k < K; k++) {
      const mine: number[] = [];
      for (let i = 0; i < bn; i++) if (batch.labels[i] === k) mine.push(i);
      if (mine.length === 0) continue;
      const a = acc[k]!;
      const block = new Float32Array(mine.length * d);
      mine.forEach((i, t) => block.set(x.subarray(i * d, (i + 1) * d), t * d));
      for (let t = 0; t < mine.length; t++) for (let j = 0; j < d; j++) a.sum[j]! += block[t * d + j]!;
      if (a.rows) a.rows.set(Float64Array.from(block), a.n * d);
      // Float64 products: the centred Gram is a difference of large terms (XᵀX − n·μμᵀ).
      else if (a.gram) await gram(Float64Array.from(block), mine.length, d, a.gram);
      a.n += mine.length;
    }
    done += bn;
    opts.onProgress?.(done, idx.length);
  }
  const classes: ClassRank[] = [];
  for (let k = 0; k < K; k++) {
    const a = acc[k]!;
    if (a.n === 0) continue;
    if (a.n !== a.expected) throw new RuntimeFailure(`class ${k}: read ${a.n} items, expected ${a.expected}`);
    if (a.rows) {
      classes.push({ k, name: ds.classes[k]!, n: a.n, ...(await classRank(a.rows, a.n, d, energy)) });
      continue;
    }
    const G = a.gram!;
    const Gc = new Float64Array(G);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) Gc[i * d + j]! -= (a.sum[i]! * a.sum[j]!) / a.n;
    const evc = Array.from(symEigenvalues(Gc, d));
    const evu = Array.from(symEigenvalues(G, d));
    const rank = energyRankFromSquares(evc, energy);
    classes.push({ k, name: ds.classes[k]!, n: a.n, rank, rankUncentred: energyRankFromSquares(evu, energy), energyCaptured: captured(evc, rank) });
  }
  return { definition: RANK_DEFINITION, dataset: ds.name, ...(opts.split ? { split: opts.split } : {}), energy, dimension: d, classes };
}
