import { RuntimeFailure, UsageError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { Dataset, RawBatch } from './types.js';

export interface SelectOptions {
  /** At most this many items of each class (all of a class that has fewer). */
  perClass?: number;
  /** At most this many items in total, split across classes in proportion to their counts. */
  limit?: number;
  seed: number;
}

/** Named as the flags are: every command that samples reaches this check. */
function checkCount(flag: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
    throw new UsageError(`--${flag} must be a positive integer (got ${v})`);
  }
}

/** --per-class and --limit must be positive integers when given. */
export function checkSamplingCounts(opts: { perClass?: number | undefined; limit?: number | undefined }): void {
  checkCount('per-class', opts.perClass);
  checkCount('limit', opts.limit);
}

/** k items drawn uniformly without replacement (partial Fisher–Yates on a copy). */
function choose(items: number[], k: number, rng: Rng): number[] {
  if (k >= items.length) return items;
  const a = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(a.length - i);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a.slice(0, k);
}

/**
 * Largest-remainder apportionment of `limit` over classes by their counts: every class gets
 * floor(limit·n_c/N) and the leftover goes to the largest fractional parts (lower class first
 * on ties), so totals are exact and class proportions survive the cap.
 */
export function apportion(counts: readonly number[], limit: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  if (limit >= total) return counts.slice();
  const exact = counts.map((n) => (limit * n) / total);
  const quota = exact.map(Math.floor);
  let left = limit - quota.reduce((a, b) => a + b, 0);
  const order = exact.map((x, c) => ({ c, frac: x - Math.floor(x) })).sort((a, b) => b.frac - a.frac || a.c - b.c);
  for (const { c } of order) {
    if (left === 0) break;
    if (quota[c]! < counts[c]!) {
      quota[c]!++;
      left--;
    }
  }
  return quota;
}

/**
 * Seeded stratified subsample of item indices, sorted ascending so reads stay sequential.
 * Deterministic for a seed: classes are drawn in label order from one Rng.
 */
export function selectIndices(labels: Int32Array, numClasses: number, opts: SelectOptions): Int32Array {
  checkSamplingCounts(opts);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= numClasses) throw new RuntimeFailure(`label ${l} of item ${i} is outside 0..${numClasses - 1}`);
    byClass[l]!.push(i);
  }
  if (opts.perClass === undefined && opts.limit === undefined) return Int32Array.from(labels, (_, i) => i);

  const rng = new Rng(opts.seed);
  let chosen = byClass.map((items) => (opts.perClass === undefined ? items : choose(items, opts.perClass, rng)));
  if (opts.limit !== undefined) {
    const quota = apportion(chosen.map((c) => c.length), opts.limit);
    chosen = chosen.map((items, c) => choose(items, quota[c]!, rng));
  }
  const out = Int32Array.from(chosen.flat());
  return out.sort();
}

/** Reads the given items batch by batch; only one batch is decoded at a time. */
export async function* batchesOf(ds: Dataset, indices: Int32Array, batchSize: number): AsyncGenerator<RawBatch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`batch size must be a positive integer, got ${batchSize}`);
  for (let start = 0; start < indices.length; start += batchSize) {
    yield await ds.read(indices.subarray(start, Math.min(indices.length, start + batchSize)));
  }
}
