/**
 * Memory-aware batching: how many images one forward pass may take so that its working memory
 * stays within a budget (`--max-memory`, default DEFAULT_MAX_MEMORY), and how an allocation
 * failure is told apart from other failures.
 *
 * Per image, a forward pass holds its input, the activations the engine keeps alive while it runs
 * (bounded above by every layer's output at once: TF.js keeps a whole predict() alive, onnxruntime
 * reuses buffers and needs less) and the copies of the fetched layers the caller receives. The
 * estimate (estimateBytesPerItem) chooses the batch before anything has run, so the same model and
 * budget always get the same batch; the growth of the process's resident memory over the second
 * batch (the first pays one-off costs) is then measured, and a cost more than twice the estimate
 * that overruns the budget (and is more than heap noise, 64 MiB) lowers the batch for the rest of
 * the run (pipeline/capture.ts).
 */
import os from 'node:os';
import { UsageError } from '../errors.js';
import type { LayerInfo } from './types.js';
import { valuesPerItem } from './types.js';

const GiB = 1024 ** 3;

/** Default budget for one batch's working memory: an eighth of the machine's memory, at most 2 GiB. */
export const DEFAULT_MAX_MEMORY = Math.min(2 * GiB, Math.floor(os.totalmem() / 8));

/**
 * TF.js on wasm runs in a 32-bit heap of at most 4 GiB that grows by doubling and does not shrink;
 * its batches are kept to a quarter of that whatever the budget (the InceptionV3 died of
 * "memory access out of bounds" at batch 64).
 */
export const WASM_HEAP_BUDGET = 1 * GiB;

let processBudget = DEFAULT_MAX_MEMORY;

/** The budget for runs that name none (the CLI's --max-memory sets it). */
export function useMaxMemory(bytes: number): void {
  if (!(Number.isFinite(bytes) && bytes > 0)) throw new UsageError(`--max-memory must be a positive size, got ${bytes}`);
  processBudget = bytes;
}

export function currentMaxMemory(): number {
  return processBudget;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: GiB, gb: GiB, gib: GiB, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** '2G', '512M', '1.5GiB', '300000000' → bytes (binary units). */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(text));
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!(bytes >= 1)) throw new UsageError(`--max-memory expects a size such as 2G, 512M or 1.5GiB (got \`${text}\`)`);
  return Math.floor(bytes);
}

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KiB`;
}

/**
 * Bytes one image costs a forward pass: input + every layer's output (the engine's working set,
 * an upper bound) + two copies of each fetched layer (the engine's output and the caller's).
 */
export function estimateBytesPerItem(inputShape: readonly (number | null)[], layers: readonly LayerInfo[], fetch: readonly string[]): number {
  const wanted = new Set(fetch);
  let values = valuesPerItem(inputShape);
  for (const l of layers) values += valuesPerItem(l.shape) * (wanted.has(l.id) ? 3 : 1);
  return 4 * values;
}

/** The budget that applies to a runner: the given one, and never more than wasm's heap allows. */
export function budgetFor(backend: string, maxMemory: number): number {
  return /\bwasm\b/.test(backend) && !/^onnxruntime/.test(backend) ? Math.min(maxMemory, WASM_HEAP_BUDGET) : maxMemory;
}

/** The largest batch of at most `ceiling` whose working memory fits the budget (at least 1). */
export function chooseBatch(ceiling: number, budget: number, bytesPerItem: number): number {
  if (!(bytesPerItem > 0)) return ceiling;
  return Math.max(1, Math.min(ceiling, Math.floor(budget / bytesPerItem)));
}

/** Whether an error is an engine running out of memory (wasm heap, onnxruntime, V8 buffers). */
export function isAllocationFailure(message: string): boolean {
  return /memory access out of bounds|bad_alloc|out of memory|cannot allocate|failed to allocate|allocation failed|Array buffer allocation failed|Invalid typed array length|Aborted\(OOM\)|Cannot enlarge memory/i.test(message);
}
