/**
 * Training data: both splits of a dataset that has them, decoded once into memory (60,000
 * Fashion-MNIST images are 47 MB as bytes), then cut into seeded shuffled batches. Pixels stay
 * in the file's range; the model card's preprocess (x/scale, NHWC) is applied per batch.
 */
import { readdir, stat } from 'node:fs/promises';
import type * as tfTypes from '../runtime/tf-types.js';
import { openDataset } from '../data/open.js';
import { registryNames } from '../data/registry.js';
import type { Dataset, DatasetSourceInfo } from '../data/types.js';
import { UsageError } from '../errors.js';
import type { Tf } from '../runtime/backend.js';

export interface InMemorySplit {
  /** n·H·W·C pixels, HWC per item, in the file's value range. */
  x: Uint8Array | Float32Array;
  labels: Int32Array;
  n: number;
  itemShape: readonly [number, number, number];
  classes: readonly string[];
  source: DatasetSourceInfo;
}

export interface TrainingData {
  name: string;
  train: InMemorySplit;
  test: InMemorySplit;
}

const TRAIN_IDX = /train.*images[-.]idx3-ubyte(\.gz)?$/;

function noTrainSplit(ref: string): UsageError {
  return new UsageError(
    `dataset \`${ref}\` has no training split`,
    `train on a known dataset with train and test splits (${registryNames().join(', ')}) or a folder holding train-* and t10k-* IDX files`,
  );
}

/** Opens the train and test splits, failing (exit 2) before any decoding when there is no train split. */
export async function openSplits(ref: string): Promise<{ name: string; train: Dataset; test: Dataset }> {
  const named = /^([a-z0-9-]+)(?::(train|test))?$/.exec(ref);
  if (named && registryNames().includes(named[1]!)) {
    const name = named[1]!;
    return { name, train: await openDataset(`${name}:train`), test: await openDataset(`${name}:test`) };
  }
  const st = await stat(ref).catch(() => null);
  if (!st) return { name: ref, train: await openDataset(ref), test: await openDataset(ref) }; // openDataset's own not-found error
  if (!st.isDirectory() || !(await readdir(ref)).some((f) => TRAIN_IDX.test(f))) throw noTrainSplit(ref);
  return { name: ref, train: await openDataset(ref, { split: 'train' }), test: await openDataset(ref, { split: 'test' }) };
}

/** Decodes a whole split, in chunks so peak memory stays near the final arrays. */
export async function loadSplit(ds: Dataset, chunk = 5000): Promise<InMemorySplit> {
  const n = ds.labels.length;
  const [h, w, c] = ds.itemShape;
  const per = h * w * c;
  let bytes: Uint8Array | null = new Uint8Array(n * per);
  let floats: Float32Array | null = null;
  for (let start = 0; start < n; start += chunk) {
    const idx = Int32Array.from({ length: Math.min(chunk, n - start) }, (_, i) => start + i);
    const b = await ds.read(idx);
    const off = start * per;
    if (bytes) {
      const fits = b.x.every((v) => Number.isInteger(v) && v >= 0 && v <= 255);
      if (fits) {
        bytes.set(b.x, off);
        continue;
      }
      // Not 8-bit data after all: widen what was read so far and keep going in float32.
      floats = new Float32Array(n * per);
      floats.set(bytes.subarray(0, off));
      bytes = null;
    }
    floats!.set(b.x, off);
  }
  return { x: bytes ?? floats!, labels: Int32Array.from(ds.labels), n, itemShape: [h, w, c], classes: ds.classes, source: ds.source };
}

export async function loadTrainingData(ref: string): Promise<TrainingData> {
  const { name, train, test } = await openSplits(ref);
  if (train.classes.length !== test.classes.length) {
    throw new UsageError(`dataset \`${ref}\`: train has ${train.classes.length} classes, test ${test.classes.length}`);
  }
  return { name, train: await loadSplit(train), test: await loadSplit(test) };
}

/** Items `indices` as an NHWC float tensor divided by `scale` (as src/data/preprocess.ts does), and their labels. */
export function batchOf(tf: Tf, split: InMemorySplit, indices: ArrayLike<number>, scale: number): { x: tfTypes.Tensor4D; labels: Int32Array } {
  const [h, w, c] = split.itemShape;
  const per = h * w * c;
  const m = indices.length;
  const data = new Float32Array(m * per);
  const labels = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const k = indices[i]!;
    const src = split.x.subarray(k * per, (k + 1) * per);
    const dst = i * per;
    for (let j = 0; j < per; j++) data[dst + j] = src[j]! / scale;
    labels[i] = split.labels[k]!;
  }
  return { x: tf.tensor4d(data, [m, h, w, c]), labels };
}
