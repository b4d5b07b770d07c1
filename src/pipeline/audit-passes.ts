/**
 * The audit's passes over the data for one model (pipeline/audit.ts conducts them): the first pass
 * feeds each layer's exact streaming statistics (ClassStats), its bounded stratified sample
 * (SampleBuffer), the probe's own larger sample and the model's accuracy counts; the second pass,
 * once the class means are known, gives exact NC1 at any width and NC4 over all N
 * (stats/mean-pass.ts). Sharded audits run the same passes on their part (pipeline/shard.ts).
 */
import { UsageError, RuntimeFailure } from '../errors.js';
import { ClassStats } from '../stats/accumulator.js';
import { SampleBuffer } from '../stats/sample-buffer.js';
import { argmaxRows } from '../metrics/accuracy.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import { capture, type CaptureTimings, type LayerPlan } from './capture.js';
import { MeanPassStats } from '../stats/mean-pass.js';
import { matmul } from '../linalg/ort-ops.js';
import { Rng } from '../util/rng.js';
import { RowChunker } from './chunk.js';
import type { PreparedData, PreparedModel } from './prepare.js';
import { valuesPerItem, type LayerInfo } from '../runtime/types.js';
import { type AuditOptions, DEFAULT_BUFFER_PER_CLASS, DEFAULT_PROBE_PER_CLASS, MAX_AUDIT_DIM, OUTPUT_CONFUSION_MAX_CLASSES, PROBE_MAX_DIM, baselineOn } from './audit-options.js';

/** Values (rows × width) gathered per layer before a statistics update. */
export const STATS_CHUNK_VALUES = 1 << 20;

export function p0dim(plans: readonly { reducer: { dim: number } }[]): number {
  return Math.max(...plans.map((p) => p.reducer.dim));
}

/**
 * The collapse metrics' second streaming pass (stats/mean-pass.ts), once the first pass has fixed
 * the class means: NC1 on layers too wide for a d×d scatter, and NC4 over all N on every layer
 * when the model's predictions are known. Only those layers are fetched; the time is added to the
 * forward/reduce/stats timings (it is model work, not metric work).
 */
export async function secondPass(model: PreparedModel, data: PreparedData, stats: Map<string, ClassStats>, classifier: boolean, K: number, opts: AuditOptions, timings: CaptureTimings): Promise<Map<string, MeanPassStats>> {
  const plans = model.plans.filter((p) => classifier || !stats.get(p.layer.id)!.hasScatter);
  const passes = new Map(plans.map((p) => [p.layer.id, new MeanPassStats(stats.get(p.layer.id)!.moments())]));
  if (plans.length === 0) return new Map();
  opts.onStage?.(`${model.name}: second pass over the data for exact NC1/NC4 (${plans.length} layer${plans.length === 1 ? '' : 's'})`);
  const chunkRows = Math.max(64, Math.min(4096, Math.floor(STATS_CHUNK_VALUES / Math.max(1, p0dim(plans)))));
  const chunkers = new Map(
    plans.map((p) => {
      const predsChunk = new Int32Array(chunkRows);
      let filled = 0;
      const pass = passes.get(p.layer.id)!;
      const chunker = new RowChunker(p.reducer.dim, chunkRows, (X, n, labels) => {
        filled = 0;
        return pass.update(X, n, labels, classifier ? predsChunk.subarray(0, n) : undefined);
      });
      // Predictions ride along with the rows: the chunker drains whenever it is full, so they
      // are copied in the same slices as the features.
      const push = async (X: Float32Array, n: number, labels: Int32Array, preds: Int32Array | undefined) => {
        for (let o = 0; o < n; ) {
          const take = Math.min(n - o, chunkRows - filled);
          if (preds) predsChunk.set(preds.subarray(o, o + take), filled);
          filled += take;
          await chunker.push(X.subarray(o * p.reducer.dim, (o + take) * p.reducer.dim), take, labels.subarray(o, o + take));
          o += take;
        }
      };
      return [p.layer.id, { push, finish: () => chunker.finish() }] as const;
    }),
  );
  const out = model.output;
  const t = await capture({
    dataset: data.dataset,
    indices: data.indices,
    runner: model.runner,
    plans,
    preprocess: model.preprocess,
    batchSize: opts.batchSize ?? 64,
    ...(opts.maxMemory !== undefined ? { maxMemory: opts.maxMemory } : {}),
    onNote: (m) => opts.onStage?.(`${model.name}: ${m}`),
    ...(classifier && out ? { outputLayerId: out.id } : {}),
    async onBatch(b) {
      const n = b.raw.shape[0];
      const preds = classifier && b.output ? argmaxRows(b.output.data, n, K) : undefined;
      for (const plan of plans) await chunkers.get(plan.layer.id)!.push(b.features.get(plan.layer.id)!, n, b.raw.labels, preds);
    },
  });
  const tFlush = performance.now();
  for (const c of chunkers.values()) await c.finish();
  for (const p of passes.values()) await p.settled();
  timings.forwardMs += t.forwardMs;
  timings.reduceMs += t.reduceMs;
  timings.sinkMs += t.sinkMs + performance.now() - tFlush;
  timings.totalMs += t.totalMs + performance.now() - tFlush;
  return passes;
}

/** Layers whose collapse metrics need the second pass: every layer of a classifier (NC4 over all N), else those too wide for a scatter. */
export function secondPassLayers(model: PreparedModel, stats: Map<string, ClassStats>, classifier: boolean): string[] {
  return model.plans.filter((p) => classifier || !stats.get(p.layer.id)!.hasScatter).map((p) => p.layer.id);
}

export interface ProbeSampler {
  buffer: SampleBuffer;
  add(X: Float32Array, n: number, labels: Int32Array, ids: Int32Array): Promise<void>;
}

/** What the probe sees of a layer `d` wide: itself, or a seeded projection to PROBE_MAX_DIM (named for the report). */
export function probeProjection(d: number): string | undefined {
  return d > PROBE_MAX_DIM ? `seeded Gaussian projection ${d}→${PROBE_MAX_DIM} dims (probe memory bound)` : undefined;
}

/**
 * The probe's sample of one layer: a larger stratified buffer, through a seeded projection when
 * the layer is wider than PROBE_MAX_DIM. The projection depends on the seed and width only, so
 * every shard of a sharded audit projects the same way and their buffers merge.
 */
export function probeSampler(plan: LayerPlan, K: number, perClass: number, seed: number): ProbeSampler {
  const d = plan.reducer.dim;
  const k = Math.min(d, PROBE_MAX_DIM);
  const buffer = new SampleBuffer({ K, perClass, seed: seed ^ 0x2c1b3c6d, d: k });
  if (k === d) return { buffer, add: async (X, n, labels, ids) => buffer.add(X, n, d, labels, ids) };
  // Entries N(0, 1/k): distances are kept in expectation (Johnson–Lindenstrauss).
  const rng = new Rng((seed ^ Math.imul(d, 0x9e3779b1)) >>> 0);
  const P = new Float32Array(d * k);
  const s = 1 / Math.sqrt(k);
  for (let i = 0; i < P.length; i++) P[i] = rng.normal() * s;
  return {
    buffer,
    async add(X, n, labels, ids) {
      buffer.add(await matmul(X, P, n, d, k), n, k, labels, ids);
    },
  };
}

/** What the passes over the data leave for one model: everything its metrics are computed from. */
export interface ModelPasses {
  stats: Map<string, ClassStats>;
  buffers: Map<string, SampleBuffer>;
  /** Buffered preprocessed inputs, for the random-layer baseline of the first layer. */
  inputBuffer: SampleBuffer | null;
  /** The linear probe's larger (possibly projected) sample per layer, when the probe is measured. */
  probes: Map<string, SampleBuffer> | null;
  /** Rows the model predicted right, and rows with a prediction (model accuracy). */
  correct: number;
  seen: number;
  /** The model's output confusion counts (row: true class, column: predicted); null when not recorded. */
  confusion: number[][] | null;
  timings: CaptureTimings;
  /** The largest batch of the first pass (one process; absent for merged shards). */
  batchSize?: number;
}

/** The model's output and whether it is a classifier over the dataset's K classes (accuracy, NC4). */
export function classifierOutput(model: PreparedModel, K: number): { out: LayerInfo | undefined; outWidth: number; classifier: boolean } {
  const out = model.output;
  const outWidth = out ? valuesPerItem(out.shape) : 0;
  return { out, outWidth, classifier: out !== undefined && outWidth === K };
}

/** Refuses layers too wide to keep samples of without a reduction. */
export function checkLayerWidths(model: PreparedModel): void {
  for (const p of model.plans) {
    if (p.reducer.dim > MAX_AUDIT_DIM) {
      const fits = p.layer.kind === 'conv' ? 'gap' : p.layer.kind === 'tokens' ? 'cls or mean-token' : `project:${Math.min(1024, MAX_AUDIT_DIM)}`;
      throw new UsageError(
        `layer \`${p.layer.id}\` of ${model.name} is ${p.reducer.dim} wide after ${p.reducer.name}, above the audit limit of ${MAX_AUDIT_DIM}`,
        `use --reduce auto, or --reduce ${fits}, which fits`,
      );
    }
  }
}

/**
 * The first pass over `data.indices` (all of them, or one shard's): exact streaming statistics
 * and the sample buffers of every layer, and the model's accuracy counts.
 */
export async function firstPass(model: PreparedModel, data: PreparedData, opts: AuditOptions, metrics: MetricGroup[]): Promise<ModelPasses> {
  const K = data.dataset.classes.length;
  const perClass = opts.bufferPerClass ?? DEFAULT_BUFFER_PER_CLASS;
  // float64 Gram products: a float32 scatter differs by ~1e-7 relative with the rows each chunk
  // happens to hold, so shards (other chunks) could not reproduce one process; float64 costs about
  // the same in onnxruntime (measured 0.7–1.2× on 128- and 1,600-wide chunks).
  const stats = new Map(model.plans.map((p) => [p.layer.id, new ClassStats(K, p.reducer.dim, { momentPrecision: 'float64' })]));
  const chunkRows = Math.max(64, Math.min(4096, Math.floor(STATS_CHUNK_VALUES / Math.max(1, p0dim(model.plans)))));
  const chunkers = new Map(
    model.plans.map((p) => [
      p.layer.id,
      new RowChunker(p.reducer.dim, chunkRows, (X, n, labels) =>
        stats.get(p.layer.id)!.update(X, n, labels).catch((e: unknown) => {
          throw e instanceof RuntimeFailure ? new RuntimeFailure(`layer \`${p.layer.id}\`: ${e.message}`, e.hint) : e;
        }),
      ),
    ]),
  );
  const buffers = new Map(model.plans.map((p) => [p.layer.id, new SampleBuffer({ K, perClass, seed: data.seed, d: p.reducer.dim })]));
  const probes = metrics.includes('probe') ? new Map(model.plans.map((p) => [p.layer.id, probeSampler(p, K, opts.probePerClass ?? DEFAULT_PROBE_PER_CLASS, data.seed)])) : null;
  const { out, classifier } = classifierOutput(model, K);
  const inputDim = valuesPerItem(model.runner.inputShape);
  const inputBuffer = baselineOn(opts) ? new SampleBuffer({ K, perClass, seed: data.seed, d: inputDim }) : null;
  let correct = 0;
  let seen = 0;
  const confusion = classifier && K <= OUTPUT_CONFUSION_MAX_CLASSES ? Array.from({ length: K }, () => new Array<number>(K).fill(0)) : null;
  const timings = await capture({
    dataset: data.dataset,
    indices: data.indices,
    runner: model.runner,
    plans: model.plans,
    preprocess: model.preprocess,
    batchSize: opts.batchSize ?? 64,
    ...(opts.maxMemory !== undefined ? { maxMemory: opts.maxMemory } : {}),
    onNote: (m) => opts.onStage?.(`${model.name}: ${m}`),
    ...(classifier && out ? { outputLayerId: out.id } : {}),
    onProgress: (d, t) => opts.onProgress?.(model.name, d, t),
    async onBatch(b) {
      const n = b.raw.shape[0];
      let preds: Int32Array | undefined;
      if (classifier && b.output) {
        preds = argmaxRows(b.output.data, n, K);
        for (let i = 0; i < n; i++) if (preds[i] === b.raw.labels[i]) correct++;
        if (confusion) for (let i = 0; i < n; i++) confusion[b.raw.labels[i]!]![preds[i]!]!++;
        seen += n;
      }
      if (inputBuffer) inputBuffer.add(b.input.data, n, b.input.data.length / n, b.raw.labels, b.raw.indices, preds);
      for (const plan of model.plans) {
        const feats = b.features.get(plan.layer.id)!;
        await chunkers.get(plan.layer.id)!.push(feats, n, b.raw.labels);
        buffers.get(plan.layer.id)!.add(feats, n, plan.reducer.dim, b.raw.labels, b.raw.indices, preds);
        if (probes) await probes.get(plan.layer.id)!.add(feats, n, b.raw.labels, b.raw.indices);
      }
    },
  });
  const tFlush = performance.now();
  for (const c of chunkers.values()) await c.finish();
  timings.sinkMs += performance.now() - tFlush;
  return { stats, buffers, inputBuffer, probes: probes ? new Map([...probes].map(([id, p]) => [id, p.buffer])) : null, correct, seen, confusion, timings, batchSize: timings.batchSize };
}
