/**
 * The one pass over the data: dataset batches → preprocessing → one model run that returns every
 * selected layer at once → a reduction per layer → the caller's sinks (npy writers for extract,
 * streaming statistics for audit). Nothing re-runs the model per layer or per metric, and memory
 * is bounded by one batch of activations, whose size follows a memory budget
 * (runtime/memory-budget.ts): estimated before the first batch, measured on the next, and halved when the
 * engine still runs out of memory; a batch of one that fails says which flags change the budget.
 */
import { preprocess } from '../data/preprocess.js';
import type { Dataset, PreprocessSpec, RawBatch } from '../data/types.js';
import type { LayerTensor, ModelRunner } from '../runtime/types.js';
import type { LayerPlan } from '../features/layer-plan.js';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { budgetFor, chooseBatch, currentMaxMemory, estimateBytesPerItem, formatBytes, isAllocationFailure } from '../runtime/memory-budget.js';

/** Resident growth over a batch smaller than this is not taken as the batch's cost (heap and allocator noise). */
const RSS_NOISE = 64 * 1024 * 1024;

/** Most images per forward pass when the caller names no --batch-size. */
export const DEFAULT_BATCH_SIZE = 64;

// LayerPlan is defined in features/ (the report's manifest records plans too); re-exported for pipeline callers.
export type { LayerPlan };

export interface CapturedBatch {
  raw: RawBatch;
  /** Reduced features per layer id, [n, dim] row-major. */
  features: Map<string, Float32Array>;
  /** The model's output for this batch when asked for (logits or probabilities). */
  output?: LayerTensor;
  /** The preprocessed model input of this batch. */
  input: { data: Float32Array; shape: number[] };
}

export interface CaptureTimings {
  images: number;
  batches: number;
  forwardMs: number;
  reduceMs: number;
  sinkMs: number;
  totalMs: number;
}

export interface CaptureResult extends CaptureTimings {
  /** The largest batch that ran (the memory budget may keep it below the requested one). */
  batchSize: number;
}

export interface CaptureOptions {
  dataset: Dataset;
  indices: Int32Array;
  runner: ModelRunner;
  plans: readonly LayerPlan[];
  preprocess: PreprocessSpec;
  /** Most images per forward pass (default DEFAULT_BATCH_SIZE); fewer when a batch would not fit maxMemory. */
  batchSize?: number;
  /** Working-memory budget of one batch in bytes (default: the process's, `--max-memory`). */
  maxMemory?: number;
  /** Told when the batch is lowered to fit the budget (one line each). */
  onNote?(message: string): void;
  /** Also fetch the model's output layer (for accuracy and predictions). */
  outputLayerId?: string;
  onBatch(batch: CapturedBatch): Promise<void> | void;
  onProgress?(done: number, total: number): void;
  /** Stop early (e.g. Ctrl-C); the caller decides what to clean up. */
  signal?: AbortSignal;
}

/** Throw a one-line error naming the layer and the dataset index of the first non-finite value. */
export function assertFinite(layerId: string, data: Float32Array, dim: number, raw: RawBatch): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) {
      const row = Math.floor(i / dim);
      throw new RuntimeFailure(
        `layer \`${layerId}\` produced ${Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf'} for dataset item ${raw.indices[row]} (value ${i % dim} of ${dim})`,
        'check the input preprocessing (--scale/--mean/--std) and the model file',
      );
    }
  }
}

/** The one-line failure for an engine that ran out of memory, naming the flags that change it. */
function outOfMemory(model: string, batch: number, budget: number, reason: string): RuntimeFailure {
  return new RuntimeFailure(
    `model ${model} ran out of memory on a batch of ${batch} image${batch === 1 ? '' : 's'} (memory budget ${formatBytes(budget)}): ${reason}`,
    batch > 1 ? 'lower --batch-size or --max-memory' : 'one image at a time (--batch-size 1) already; a smaller --max-memory cannot help: use a smaller input (--size) or a machine with more memory',
  );
}

export async function capture(opts: CaptureOptions): Promise<CaptureResult> {
  const ids = opts.plans.map((p) => p.layer.id);
  const fetch = opts.outputLayerId && !ids.includes(opts.outputLayerId) ? [...ids, opts.outputLayerId] : ids;
  const t: CaptureResult = { images: 0, batches: 0, forwardMs: 0, reduceMs: 0, sinkMs: 0, totalMs: 0, batchSize: 0 };
  const start = performance.now();
  const total = opts.indices.length;
  const runner = opts.runner;
  const ceiling = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(ceiling) || ceiling < 1) throw new UsageError(`batch size must be a positive integer, got ${ceiling}`);
  const maxMemory = opts.maxMemory ?? currentMaxMemory();
  let budget = budgetFor(runner.backend, maxMemory);
  const estimate = estimateBytesPerItem(runner.inputShape, runner.layers(), fetch);
  let batch = chooseBatch(ceiling, budget, estimate);
  const note = (why: string): void =>
    opts.onNote?.(`batch of ${batch} instead of ${ceiling} images: ${why} (${budget < maxMemory ? `TF.js wasm heap budget ${formatBytes(budget)}; ` : ''}--max-memory ${formatBytes(maxMemory)})`);
  if (batch < ceiling) note(`about ${formatBytes(estimate)} of activations per image`);
  let measured = false;
  let failed: string | null = null;
  opts.onProgress?.(0, total);
  for (let at = 0; at < total; ) {
    if (opts.signal?.aborted) throw new RuntimeFailure('interrupted');
    const raw = await opts.dataset.read(opts.indices.subarray(at, Math.min(total, at + batch)));
    const input = preprocess(raw, opts.preprocess);
    const n = raw.shape[0];
    let t0 = performance.now();
    const rss0 = process.memoryUsage.rss();
    let tensors: Map<string, LayerTensor>;
    try {
      tensors = await runner.run(input, fetch);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      const reason = errorMessage(e);
      if (!isAllocationFailure(reason) && failed === null) throw e;
      failed ??= reason;
      // Out of memory: try half the batch, down to one image; the engine may not survive it, and
      // then the first allocation failure is what is reported.
      if (n <= 1) throw outOfMemory(runner.path, n, budget, failed);
      batch = Math.max(1, Math.floor(n / 2));
      note('the engine ran out of memory on a larger one');
      t.forwardMs += performance.now() - t0;
      continue;
    }
    t.forwardMs += performance.now() - t0;
    t.batchSize = Math.max(t.batchSize, n);
    if (t.batches === 0 && budgetFor(runner.backend, maxMemory) < budget) {
      // The first batch settled the engine (a TF.js model whose conversion failed its check runs
      // on wasm from now on): its tighter budget applies to the rest.
      budget = budgetFor(runner.backend, maxMemory);
      const fits = chooseBatch(batch, budget, estimate);
      if (fits < batch) {
        batch = fits;
        note(`about ${formatBytes(estimate)} of activations per image`);
      }
    }
    if (t.batches === 1 && !measured) {
      // Resident growth over the first full-price batch (the first also pays one-off costs: the
      // session, a conversion check): lower the batch where the estimate was far too low.
      measured = true;
      const grown = process.memoryUsage.rss() - rss0;
      const perItem = grown / n;
      const fits = chooseBatch(batch, budget, perItem);
      // Below RSS_NOISE the growth is the garbage collector's business, not the batch's.
      if (grown > RSS_NOISE && perItem > 2 * estimate && fits < batch) {
        batch = fits;
        note(`a batch grew memory by ${formatBytes(perItem)} per image`);
      }
    }
    t0 = performance.now();
    const features = new Map<string, Float32Array>();
    for (const plan of opts.plans) {
      const tensor = tensors.get(plan.layer.id);
      if (!tensor) throw new RuntimeFailure(`model did not return layer \`${plan.layer.id}\``);
      const reduced = await plan.reducer.apply(tensor);
      assertFinite(plan.layer.id, reduced, plan.reducer.dim, raw);
      features.set(plan.layer.id, reduced);
    }
    t.reduceMs += performance.now() - t0;
    t0 = performance.now();
    const output = opts.outputLayerId ? tensors.get(opts.outputLayerId) : undefined;
    await opts.onBatch({ raw, features, input, ...(output ? { output } : {}) });
    t.sinkMs += performance.now() - t0;
    t.images += n;
    t.batches += 1;
    at += n;
    opts.onProgress?.(t.images, total);
  }
  t.totalMs = performance.now() - start;
  return t;
}
