/**
 * The one pass over the data: dataset batches → preprocessing → one model run that returns every
 * selected layer at once → a reduction per layer → the caller's sinks (npy writers for extract,
 * streaming statistics for audit). Nothing re-runs the model per layer or per metric, and memory
 * is bounded by one batch of activations.
 */
import { batchesOf } from '../data/sampling.js';
import { preprocess } from '../data/preprocess.js';
import type { Dataset, PreprocessSpec, RawBatch } from '../data/types.js';
import type { LayerTensor, ModelRunner } from '../runtime/types.js';
import type { LayerPlan } from '../features/layer-plan.js';
import { RuntimeFailure } from '../errors.js';

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

export interface CaptureOptions {
  dataset: Dataset;
  indices: Int32Array;
  runner: ModelRunner;
  plans: readonly LayerPlan[];
  preprocess: PreprocessSpec;
  batchSize: number;
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

export async function capture(opts: CaptureOptions): Promise<CaptureTimings> {
  const ids = opts.plans.map((p) => p.layer.id);
  const fetch = opts.outputLayerId && !ids.includes(opts.outputLayerId) ? [...ids, opts.outputLayerId] : ids;
  const t: CaptureTimings = { images: 0, batches: 0, forwardMs: 0, reduceMs: 0, sinkMs: 0, totalMs: 0 };
  const start = performance.now();
  const total = opts.indices.length;
  opts.onProgress?.(0, total);
  for await (const raw of batchesOf(opts.dataset, opts.indices, opts.batchSize)) {
    if (opts.signal?.aborted) throw new RuntimeFailure('interrupted');
    const input = preprocess(raw, opts.preprocess);
    let t0 = performance.now();
    const tensors = await opts.runner.run(input, fetch);
    t.forwardMs += performance.now() - t0;
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
    t.images += raw.shape[0];
    t.batches += 1;
    opts.onProgress?.(t.images, total);
  }
  t.totalMs = performance.now() - start;
  return t;
}
