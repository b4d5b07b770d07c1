import { RuntimeFailure, UsageError } from '../errors.js';
import type { Dataset, DatasetSourceInfo, RawBatch } from './types.js';

/** Any numeric typed array a file format can hand us as pixel storage. */
export type PixelArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** Class names '0', '1', … up to the largest label, for files that carry no names. */
export function defaultClassNames(labels: ArrayLike<number>, what = 'labels'): string[] {
  let max = -1;
  let at = -1;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! > max) {
      max = labels[i]!;
      at = i;
    }
  }
  // One name per value up to the largest label: a corrupt label of 2e9 must not build 2e9 names.
  if (max >= MAX_CLASSES) throw new RuntimeFailure(`${what}: label ${max} of item ${at} is beyond ${MAX_CLASSES - 1}, the most classes a label file without class names may have (corrupt labels?)`);
  return Array.from({ length: max + 1 }, (_, k) => String(k));
}

/** Class count above which unnamed integer labels are taken for corruption. */
export const MAX_CLASSES = 65536;

/**
 * Labels as read from a file (any integer width, bigint for int64) narrowed to Int32Array. Every
 * value is range-checked first: Int32Array.from wraps silently, and a CSV label of 4294967299
 * became class 3. Non-integers and values outside 0..2^31-1 are refused, naming the item.
 */
export function narrowLabels(values: ArrayLike<number | bigint>, what: string): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const ok = typeof v === 'bigint' ? v >= 0n && v <= 0x7fffffffn : Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;
    if (!ok) {
      throw new RuntimeFailure(`${what}: label ${String(v)} of item ${i} is not a class index (a whole number from 0 to ${0x7fffffff})`, 'check that the labels belong to these images');
    }
    out[i] = Number(v);
  }
  return out;
}

/**
 * Labels must index `classes`; a file whose labels fall outside is corrupt or mismatched with
 * the class list, and silently accepting it would skew every per-class statistic.
 */
export function checkLabels(labels: Int32Array, classes: readonly string[], what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= classes.length) {
      throw new RuntimeFailure(
        `${what}: label ${l} of item ${i} is outside the ${classes.length} classes (0..${classes.length - 1})`,
        'pass the full class list, or check that the labels file belongs to these images',
      );
    }
  }
}

/** Validates that read() indices are in range; out of range means a bad --indices or sample spec. */
export function checkIndices(indices: ArrayLike<number>, size: number, name: string): void {
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= size) {
      throw new UsageError(`index ${k} is out of range for dataset \`${name}\` with ${size} items`);
    }
  }
}

export function emptyBatch(n: number, shape: readonly [number, number, number]): RawBatch {
  return {
    x: new Float32Array(n * shape[0] * shape[1] * shape[2]),
    shape: [n, shape[0], shape[1], shape[2]],
    labels: new Int32Array(n),
    indices: new Int32Array(n),
  };
}

/** 255 for bytes (their range, no pass needed); otherwise one pass over the values. */
function maxOf(pixels: PixelArray): number {
  if (pixels instanceof Uint8Array) return 255;
  let m = -Infinity;
  for (let i = 0; i < pixels.length; i++) if (pixels[i]! > m) m = pixels[i]!;
  return m;
}

export interface MemoryDatasetInit {
  name: string;
  classes: readonly string[];
  labels: Int32Array;
  itemShape: readonly [number, number, number];
  /** All items back to back, HWC per item, in the file's value range. */
  pixels: PixelArray;
  source: DatasetSourceInfo;
}

/**
 * A dataset whose items all sit in one typed array (IDX, CSV, NPY). Items stay in their
 * compact stored type (uint8 for MNIST: 47 MB for 60k images) and become float32 only per batch.
 */
export function memoryDataset(init: MemoryDatasetInit): Dataset {
  const [h, w, c] = init.itemShape;
  if (!(h >= 1 && w >= 1 && c >= 1)) throw new RuntimeFailure(`${init.name}: items of shape [${h}, ${w}, ${c}] have no pixels`);
  const itemSize = h * w * c;
  const n = init.labels.length;
  if (init.pixels.length !== n * itemSize) {
    throw new RuntimeFailure(
      `${init.name}: ${init.pixels.length} values do not make ${n} items of shape [${h}, ${w}, ${c}]`,
    );
  }
  return {
    name: init.name,
    classes: init.classes,
    labels: init.labels,
    itemShape: init.itemShape,
    source: init.source,
    maxValue: maxOf(init.pixels),
    async read(indices: ArrayLike<number>): Promise<RawBatch> {
      checkIndices(indices, n, init.name);
      const batch = emptyBatch(indices.length, init.itemShape);
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        batch.indices[i] = k;
        batch.labels[i] = init.labels[k]!;
        const from = k * itemSize;
        const item = init.pixels.subarray(from, from + itemSize);
        batch.x.set(item, i * itemSize);
      }
      return batch;
    },
  };
}
