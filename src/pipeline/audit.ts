/**
 * `audit`: the main job. One pass over the data per model captures every selected layer; each
 * layer feeds exact streaming statistics (ClassStats) and a bounded stratified sample
 * (SampleBuffer); the metrics of docs/metrics/ are computed from those at the end; the report
 * is validated against its schema and written atomically with its manifest.
 */
import path from 'node:path';
import type { OpenDatasetOptions } from '../data/open.js';
import { UsageError, RuntimeFailure, errorMessage } from '../errors.js';
import { writeReportHtml } from '../report/html.js';
import { ClassStats } from '../stats/accumulator.js';
import { SampleBuffer } from '../stats/sample-buffer.js';
import { argmaxRows } from '../metrics/accuracy.js';
import { DEFINITIONS, type MetricResult } from '../metrics/types.js';
import { createRunFolder, defaultRunDir, writeFileAtomic } from '../report/run-folder.js';
import { baseManifest, describeDataset, describeModel, type ManifestModel } from '../report/manifest.js';
import { REPORT_SCHEMA, reportSchema, type LayerReport, type ModelReport, type Report } from '../report/schema.js';
import { checkGateMetrics, evaluateGates, parseGate, type Gate, type GateResult } from '../report/gates.js';
import { modelViews } from '../report/findings.js';
import { renderSummary } from '../report/summary.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import { capture, type CaptureTimings, type LayerPlan } from './capture.js';
import { MeanPassStats, type MeanPassResult } from '../stats/mean-pass.js';
import { kappaSaturationWarning } from '../metrics/separability/index.js';
import { matmul } from '../linalg/ort-ops.js';
import { Rng } from '../util/rng.js';
import { modelTrend } from './trends.js';
import { ckaMatrix, CKA_DEFINITION, type CkaMethod } from '../metrics/cka.js';
import { metricsCsv, similarityCsv } from '../report/records.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { RowChunker } from './chunk.js';
import type { PhaseInset } from '../metrics/baseline/inset.js';
import { activationOf, baselineMetrics, BASELINE_GROUPS, DEFAULT_BASELINE_DRAWS } from './baseline.js';
import { computeLayerMetrics, failedCells, layerMetricGroups, type LayerMetricOptions, type MetricTimings } from './layer-metrics.js';
import { resolveModelPath } from '../runtime/open.js';
import type { Engine } from '../runtime/tfjs-onnx/engine.js';
import { modelDisplayName, prepareData, prepareModel, type ModelOptions, type PreparedData, type PreparedModel, type SamplingOptions } from './prepare.js';
import { valuesPerItem, type LayerInfo, type ModelRunner } from '../runtime/types.js';
import { readClassifierHead, type ClassifierHead } from '../runtime/classifier-head.js';
import { checkAccuracies } from './accuracy-check.js';

export const DEFAULT_METRICS: MetricGroup[] = ['geometry', 'collapse', 'rank', 'probe'];
/** Rows kept per class and layer for the sample-based metrics. */
export const DEFAULT_BUFFER_PER_CLASS = 200;
/**
 * The linear probe's own sample: up to this many rows per class (all 10,000 images of a
 * 10-class test set), cross-fitted in PROBE_FOLDS folds, so the probe on the layer feeding the
 * head reads what that head reads (0.894 vs the model's 0.901 on the shipped MLP, where 70% of
 * the 200-per-class buffer gave 0.863). Layers wider than PROBE_MAX_DIM are seen through a
 * seeded Gaussian projection to PROBE_MAX_DIM, which bounds memory at
 * K·PROBE_PER_CLASS·PROBE_MAX_DIM floats per layer whatever N is.
 */
export const DEFAULT_PROBE_PER_CLASS = 1000;
export const PROBE_MAX_DIM = 1024;
export const PROBE_FOLDS = 5;
/**
 * The audit probe's L2 weight and gradient tolerance. With ~8,000 rows per fit, λ = 1e-2 on the
 * mean loss generalises at least as well as 1e-3 (shipped MLP dense_2: 0.8964 vs 0.8942 held-out)
 * and needs a third of the iterations; stopping at a gradient of 1e-3 instead of 1e-4 left every
 * held-out prediction unchanged there at a third of the iterations again.
 */
export const AUDIT_PROBE_LAMBDA = 1e-2;
export const AUDIT_PROBE_GTOL = 1e-3;
/** Above this many classes the model's output confusion matrix (K² counts) is not recorded. */
export const OUTPUT_CONFUSION_MAX_CLASSES = 100;
/** Widest layer the audit keeps samples of without a reduction; wider layers must be reduced. */
export const MAX_AUDIT_DIM = 8192;
/** Values (rows × width) gathered per layer before a statistics update. */
const STATS_CHUNK_VALUES = 1 << 20;

function p0dim(plans: readonly { reducer: { dim: number } }[]): number {
  return Math.max(...plans.map((p) => p.reducer.dim));
}

export interface AuditModel extends ModelOptions {
  path: string;
}

export interface AuditOptions extends SamplingOptions {
  models: AuditModel[];
  dataset: string;
  datasetOptions?: OpenDatasetOptions;
  metrics?: MetricGroup[];
  /** Default reduction for models that do not set their own (default auto). */
  reduce?: string;
  bufferPerClass?: number;
  /** Rows per class the linear probe keeps (default DEFAULT_PROBE_PER_CLASS). */
  probePerClass?: number;
  /** Measure each layer beside random Gaussian layers of the same width on the same input (docs/metrics/baseline.md). Default random-layer. */
  baseline?: 'none' | 'random-layer';
  /** Random layers drawn per measured layer (default DEFAULT_BASELINE_DRAWS). */
  baselineDraws?: number;
  /** Metric groups measured on the random layers (default: those of `metrics` that have a baseline). */
  baselineMetrics?: MetricGroup[];
  /** Representation similarity between every pair of layers (of all models) on the buffered samples. */
  similarity?: CkaMethod;
  /** Bootstrap confidence level, e.g. 0.95; off when undefined. */
  ci?: number;
  bootstrapReps?: number;
  probeLambda?: number;
  /** Most images per forward pass (default 64); fewer where a batch would not fit maxMemory. */
  batchSize?: number;
  /** Working-memory budget of one forward pass in bytes (default runtime/memory-budget.ts DEFAULT_MAX_MEMORY). */
  maxMemory?: number;
  /** Engine for TF.js models that do not set their own: auto (default), onnx, tfjs. */
  engine?: Engine;
  /** Output folder; default runs/<time>-<name>. */
  out?: string;
  force?: boolean;
  failUnder?: string[];
  failOver?: string[];
  name?: string;
  command?: string;
  onProgress?(model: string, done: number, total: number): void;
  /** The metrics phase, in layer × metric-group steps (the baseline is one group); `step` names the layer and group just done. */
  onMetricsProgress?(model: string, done: number, total: number, step: string): void;
  onStage?(message: string): void;
}

export interface AuditResult {
  outDir: string;
  report: Report;
  gates: GateResult[];
  /** True when every gate held. */
  passed: boolean;
}

/** Refuses selections without two classes of two items; returns warnings about empty classes. */
export function checkClassCounts(data: PreparedData): string[] {
  const counts = new Array<number>(data.dataset.classes.length).fill(0);
  for (const i of data.indices) counts[data.dataset.labels[i]!]! += 1;
  const present = counts.filter((c) => c > 0).length;
  const warnings: string[] = [];
  // Unnamed labels make one class per value up to the largest: a stray label of 200 among 0–9
  // shows up as 190 empty classes, which the metrics would quietly skip.
  const inData = new Array<number>(counts.length).fill(0);
  for (const l of data.dataset.labels) inData[l]! += 1;
  const emptyInData = inData.filter((c) => c === 0).length;
  if (emptyInData > 0) {
    warnings.push(`${emptyInData} of the ${counts.length} classes (${data.dataset.classes[0]}..${data.dataset.classes[counts.length - 1]}) have no items in the dataset; are the labels right?`);
  }
  if (present < 2) throw new UsageError(`only ${present} class has items in the selection; layer geometry needs at least two classes`);
  const single = counts.findIndex((c) => c === 1);
  if (single >= 0) {
    throw new UsageError(
      `class \`${data.dataset.classes[single]}\` has a single item in the selection; within-class spread needs at least two per class`,
      'raise --per-class / --limit, or remove that class from the data',
    );
  }
  return warnings;
}

/**
 * NC3 compares the classifier head with the class means of the layer that feeds it, so it is
 * measured at that one layer, when it is selected at full width. Otherwise the report says why not.
 */
async function headForNc3(name: string, runner: ModelRunner, plans: readonly LayerPlan[], K: number, warnings: string[]): Promise<{ layer: string; W: Float64Array } | null> {
  let head: ClassifierHead;
  try {
    head = await readClassifierHead(runner, name);
  } catch (e) {
    warnings.push(`${name}: NC3 skipped: ${errorMessage(e)}`);
    return null;
  }
  if (head.K !== K) {
    warnings.push(`${name}: NC3 skipped: the classifier head has ${head.K} outputs, not one per class (${K})`);
    return null;
  }
  const plan = head.inputLayer ? plans.find((p) => p.layer.id === head.inputLayer) : undefined;
  if (!plan || plan.reducer.name !== 'flatten' || plan.reducer.dim !== head.d) {
    const where = head.inputLayer ? `its input \`${head.inputLayer}\`${plan ? ` is reduced (${plan.reducer.describe}), not kept whole` : ' is not among the selected layers'}` : 'its input is not a layer of the model';
    warnings.push(`${name}: NC3 skipped: ${where}`);
    return null;
  }
  return { layer: plan.layer.id, W: head.W };
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

/** The random-layer baseline is on unless `baseline: 'none'`. */
export function baselineOn(opts: AuditOptions): boolean {
  return (opts.baseline ?? 'random-layer') === 'random-layer';
}

function checkBaselineOptions(opts: AuditOptions): void {
  const d = opts.baselineDraws;
  if (d !== undefined && !(Number.isInteger(d) && d >= 1)) throw new UsageError(`--baseline-draws must be a whole number ≥ 1 (random layers per measured layer; 2 or more give an interval; got ${d})`);
  for (const g of opts.baselineMetrics ?? []) {
    if (!BASELINE_GROUPS.includes(g)) throw new UsageError(`--baseline-metrics: \`${g}\` has no random-layer baseline`, `choose from ${BASELINE_GROUPS.join(', ')}`);
  }
}

/** What the baseline computes once per audit and reuses across layers and models (phase insets by activation and r, input rank ladders by content). */
export interface BaselineCaches {
  inset: Map<string, Promise<PhaseInset | null>>;
  ladder: Map<string, Promise<number[][]>>;
}

export function newBaselineCaches(): BaselineCaches {
  return { inset: new Map(), ladder: new Map() };
}

interface ProbeSampler {
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
function probeSampler(plan: LayerPlan, K: number, perClass: number, seed: number): ProbeSampler {
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

export interface ModelRun {
  report: ModelReport;
  manifest: ManifestModel;
  /** Buffered samples per layer, kept only when similarity is wanted. */
  samples: SampleMatrix[];
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

async function auditModel(spec: AuditModel, data: PreparedData, opts: AuditOptions, metrics: MetricGroup[], warnings: string[], names: Set<string>, caches: BaselineCaches): Promise<ModelRun> {
  const model = await openAuditModel(spec, data, opts, names);
  try {
    checkLayerWidths(model);
    const passes = await firstPass(model, data, opts, metrics);
    const K = data.dataset.classes.length;
    const { classifier } = classifierOutput(model, K);
    const meanPasses = new Map<string, MeanPassResult>();
    if (metrics.includes('collapse')) {
      for (const [id, p] of await secondPass(model, data, passes.stats, classifier, K, opts, passes.timings)) meanPasses.set(id, p.result());
    }
    return await finishModel(model, data, opts, metrics, warnings, passes, meanPasses, caches);
  } finally {
    await model.runner.dispose();
  }
}

/** Opens a model of the audit and gives it a name no earlier model of the run has. */
export async function openAuditModel(spec: AuditModel, data: PreparedData, opts: AuditOptions, names: Set<string>): Promise<PreparedModel> {
  const engine = spec.engine ?? opts.engine;
  const model = await prepareModel(spec.path, data, { ...spec, reduce: spec.reduce ?? opts.reduce ?? 'auto', ...(engine ? { engine } : {}) });
  // Unique before the run, so that progress and stage lines already name `model-2`.
  const base = model.name;
  for (let i = 2; names.has(model.name); i++) model.name = `${base}-${i}`;
  names.add(model.name);
  return model;
}

/**
 * The metrics of one model from its passes (one process's, or the merge of shards'): every layer's
 * metrics and baseline, NC3 at the head's input, accuracy, the trend and the manifest entry.
 */
export async function finishModel(model: PreparedModel, data: PreparedData, opts: AuditOptions, metrics: MetricGroup[], warnings: string[], passes: ModelPasses, meanPasses: Map<string, MeanPassResult>, caches: BaselineCaches = newBaselineCaches()): Promise<ModelRun> {
  const K = data.dataset.classes.length;
  const { stats, buffers, inputBuffer, probes, correct, seen, confusion, timings } = passes;
  const { out, outWidth, classifier } = classifierOutput(model, K);
  if (out && !classifier) warnings.push(`${model.name}: output \`${out.id}\` has ${outWidth} values, not one per class (${K}); model accuracy and NC4 are skipped`);
  opts.onStage?.(`${model.name}: computing metrics for ${model.plans.length} layers`);
  const t0 = performance.now();
  const layerOpts: LayerMetricOptions = {
    metrics,
    seed: data.seed,
    ...(opts.ci !== undefined ? { ci: opts.ci } : {}),
    ...(opts.bootstrapReps !== undefined ? { bootstrapReps: opts.bootstrapReps } : {}),
    ...(opts.probeLambda !== undefined ? { probeLambda: opts.probeLambda } : {}),
    hasPredictions: classifier,
  };
  for (const w of model.runner.warnings?.() ?? []) warnings.push(`${model.name}: ${w}`);
  const head = metrics.includes('collapse') ? await headForNc3(model.name, model.runner, model.plans, K, warnings) : null;
  const layers: LayerReport[] = [];
  const byGroup: MetricTimings = {};
  const kept: SampleMatrix[] = [];
  const n = model.plans.length;
  let previous = inputBuffer?.matrix();
  const baselineOpts = {
    seed: data.seed,
    groups: opts.baselineMetrics ?? metrics,
    draws: opts.baselineDraws ?? DEFAULT_BASELINE_DRAWS,
    ...(opts.probeLambda !== undefined ? { probeLambda: opts.probeLambda } : {}),
    insetCache: caches.inset,
    ladderCache: caches.ladder,
  };
  const groupSteps = layerMetricGroups(metrics).length + (previous ? 1 : 0);
  let stepsDone = 0;
  const step = (what: string) => opts.onMetricsProgress?.(model.name, ++stepsDone, n * groupSteps, what);
  for (const [i, plan] of model.plans.entries()) {
    const buffer = buffers.get(plan.layer.id)!;
    const matrix = buffer.matrix();
    if (opts.similarity) kept.push(matrix);
    const pass = meanPasses.get(plan.layer.id);
    const withHead = head && head.layer === plan.layer.id ? { ...layerOpts, classifierWeights: head.W } : layerOpts;
    const probe = probes?.get(plan.layer.id);
    const withPass = pass ? { ...withHead, meanPass: pass } : withHead;
    const projection = probeProjection(plan.reducer.dim);
    const forLayer: LayerMetricOptions = probe
      ? {
          ...withPass,
          probeSamples: probe.matrix(),
          probe: {
            folds: PROBE_FOLDS,
            lambda: opts.probeLambda ?? AUDIT_PROBE_LAMBDA,
            gtol: AUDIT_PROBE_GTOL,
            population: data.indices.length,
            width: plan.reducer.dim,
            ...(projection ? { projection } : {}),
          },
        }
      : withPass;
    const results = await computeLayerMetrics(stats.get(plan.layer.id)!, matrix, forLayer, byGroup, (g) => step(`${plan.layer.id} ${g}`));
    const probeWarning = results.find((r) => r.name === 'probe_heldout_accuracy')?.detail?.warning;
    if (typeof probeWarning === 'string') warnings.push(`${model.name} \`${plan.layer.id}\`: linear probe: ${probeWarning}`);
    if (previous) {
      const tb = performance.now();
      results.push(...(await baselineMetrics(previous, matrix, plan.reducer.dim, activationOf(plan.layer.op, plan.layer.activation), results, baselineOpts).catch((e: unknown) => failedCells('baseline', baselineOpts.groups, e))));
      byGroup.baseline = (byGroup.baseline ?? 0) + performance.now() - tb;
      previous = matrix;
      step(`${plan.layer.id} baseline`);
    }
    layers.push({
      id: plan.layer.id,
      op: plan.layer.op,
      shape: plan.layer.shape,
      index: plan.layer.index,
      position: i,
      depth: n > 1 ? i / (n - 1) : 1,
      reduction: plan.reducer.describe,
      dim: plan.reducer.dim,
      samples: { streamed: data.indices.length, buffered: buffer.size },
      metrics: Object.fromEntries(results.map((r) => [r.name, toRecord(r)])),
    });
  }
  const saturated = kappaSaturationWarning(model.name, layers);
  if (saturated) warnings.push(saturated);
  const metricsMs = performance.now() - t0;
  const manifest = await describeModel(model.name, model.runner, model.preprocess, model.plans, undefined, out?.id);
  const accuracy: MetricResult | undefined = classifier && out
    ? { name: 'accuracy', value: seen ? correct / seen : NaN, definition: DEFINITIONS.accuracy, detail: { n: seen, correct, output: out.id, ...(confusion ? { confusion } : {}) } }
    : undefined;
  return {
    manifest,
    samples: kept,
    report: {
      name: model.name,
      path: manifest.path,
      sha256: manifest.sha256,
      format: manifest.format,
      backend: manifest.backend,
      preprocess: { ...model.preprocess },
      reductionRule: model.reductionRule,
      ...(passes.batchSize !== undefined && passes.batchSize > 0 && passes.batchSize < (opts.batchSize ?? 64) && passes.batchSize < data.indices.length ? { batchSize: passes.batchSize } : {}),
      ...(accuracy ? { accuracy: toRecord(accuracy) } : {}),
      layers,
      trend: modelTrend({ layers, ...(accuracy ? { accuracy: toRecord(accuracy) } : {}) }),
      timings: { forwardMs: timings.forwardMs, reduceMs: timings.reduceMs, statsMs: timings.sinkMs, metricsMs, metricsByGroupMs: byGroup, totalMs: timings.totalMs + metricsMs },
    },
  };
}

/** JSON cannot hold NaN: a metric that is undefined for this layer is reported as null. */
function toRecord(r: MetricResult): Report['models'][number]['layers'][number]['metrics'][string] {
  return {
    name: r.name,
    value: Number.isFinite(r.value) ? r.value : null,
    definition: r.definition,
    ...(r.ci ? { ci: r.ci } : {}),
    ...(r.basis ? { basis: r.basis } : {}),
    ...(r.failed !== undefined ? { failed: r.failed } : {}),
    ...(r.detail ? { detail: JSON.parse(JSON.stringify(r.detail, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))) as Record<string, unknown> } : {}),
  };
}

/** CKA between every pair of layers of every model; the buffers hold the same items in the same order. */
async function layerSimilarity(runs: ModelRun[], method: CkaMethod): Promise<NonNullable<Report['similarity']>> {
  const entries = runs.flatMap((r) => r.report.layers.map((l, i) => ({ model: r.report.name, layer: l.id, depth: l.depth, m: r.samples[i]! })));
  const ref = entries[0]!.m.ids;
  for (const e of entries) {
    if (e.m.n !== ref.length || e.m.ids.some((id, i) => id !== ref[i])) {
      throw new RuntimeFailure(`internal: sample buffers of ${e.model} ${e.layer} hold other items than the first layer's; CKA needs the same samples`);
    }
  }
  const matrix = await ckaMatrix(entries.map((e) => ({ X: e.m.X, n: e.m.n, d: e.m.d })), method);
  return {
    method,
    definition: CKA_DEFINITION[method],
    n: ref.length,
    layers: entries.map(({ model, layer, depth }) => ({ model, layer, depth })),
    matrix: matrix.map((row) => row.map((v) => (Number.isFinite(v) ? v : null))),
  };
}

/** The audit's option checks that need no data: gates, --ci, --buffer-per-class; returns the gates and metric groups. */
export function checkAuditOptions(opts: AuditOptions): { gates: Gate[]; metrics: MetricGroup[] } {
  if (opts.models.length === 0) throw new UsageError('audit needs at least one model (--model or a probe spec)');
  const gates: Gate[] = [...(opts.failUnder ?? []).map((g) => parseGate(g, 'under')), ...(opts.failOver ?? []).map((g) => parseGate(g, 'over'))];
  if (opts.ci !== undefined && !(opts.ci > 0 && opts.ci < 1)) throw new UsageError(`--ci must be a level between 0 and 1, e.g. 0.95 (got ${opts.ci})`);
  const b = opts.bufferPerClass;
  if (b !== undefined && !(Number.isInteger(b) && b >= 2)) throw new UsageError(`--buffer-per-class must be a whole number ≥ 2 (rows kept per class for probes and ranks; got ${b})`);
  const pp = opts.probePerClass;
  if (pp !== undefined && !(Number.isInteger(pp) && pp >= 2)) throw new UsageError(`--probe-per-class must be a whole number ≥ 2 (rows per class the linear probe cross-fits; got ${pp})`);
  const metrics = opts.metrics ?? DEFAULT_METRICS;
  checkGateMetrics(gates, metrics, baselineOn(opts));
  checkBaselineOptions(opts);
  return { gates, metrics };
}

export async function audit(opts: AuditOptions): Promise<AuditResult> {
  const { gates, metrics } = checkAuditOptions(opts);
  // Every model is found before the first one runs: a typo in the last of several models should
  // not cost the time of all the others.
  for (const m of opts.models) await resolveModelPath(m.path);
  const data = await prepareData(opts.dataset, opts.datasetOptions ?? {}, opts);
  const classWarnings = checkClassCounts(data);
  return writeAuditRun(opts, data, metrics, gates, classWarnings, async (warnings) => {
    const names = new Set<string>();
    const runs: ModelRun[] = [];
    const caches = newBaselineCaches();
    for (const m of opts.models) {
      runs.push(await auditModel(m, data, opts, metrics, warnings, names, caches));
    }
    warnings.push(...(await checkAccuracies(runs.map((r) => r.report), data.dataset)));
    return runs;
  });
}

/**
 * The run folder of an audit: created before `produce` computes the models' runs (so a bad --out
 * fails before any work), then the report, its checks and every file written atomically. Both a
 * single-process audit and `merge` of shards end here, so they write the same folder.
 */
export async function writeAuditRun(opts: AuditOptions, data: PreparedData, metrics: MetricGroup[], gates: Gate[], classWarnings: string[], produce: (warnings: string[]) => Promise<ModelRun[]>): Promise<AuditResult> {
  const folder = await createRunFolder(opts.out ?? defaultRunDir(`audit-${opts.name ?? modelDisplayName(opts.models[0]!.path)}`), {
    force: opts.force ?? false,
    inputs: [...opts.models.map((m) => m.path), opts.dataset],
    unique: opts.out === undefined,
  });
  try {
    const warnings: string[] = [...classWarnings];
    const runs = await produce(warnings);
    const similarity = opts.similarity ? await layerSimilarity(runs, opts.similarity) : undefined;
    const dataset = describeDataset(data.ref, data.dataset, data.indices, data.sampling);
    const manifest = baseManifest(opts.command ?? 'audit', data.seed, dataset, runs.map((r) => r.manifest));
    const draft: Report = {
      schema: REPORT_SCHEMA,
      createdAt: manifest.createdAt,
      command: manifest.command,
      seed: data.seed,
      versions: manifest.versions,
      dataset: { ref: data.ref, name: dataset.name, classes: dataset.classes, selectedItems: dataset.selectedItems, perClassCounts: dataset.perClassCounts },
      options: {
        metrics,
        bufferPerClass: opts.bufferPerClass ?? DEFAULT_BUFFER_PER_CLASS,
        ...(metrics.includes('probe') ? { probePerClass: opts.probePerClass ?? DEFAULT_PROBE_PER_CLASS } : {}),
        ...(opts.similarity ? { similarity: opts.similarity } : {}),
        ...(baselineOn(opts) ? { baseline: 'random-layer', baselineDraws: opts.baselineDraws ?? DEFAULT_BASELINE_DRAWS, baselineMetrics: (opts.baselineMetrics ?? metrics).filter((g) => BASELINE_GROUPS.includes(g)) } : {}),
        ...(opts.ci !== undefined ? { ci: opts.ci } : {}),
        sampling: data.sampling,
        batchSize: opts.batchSize ?? 64,
      },
      models: runs.map((r) => ({ ...r.report, views: modelViews(r.report, dataset.classes) })),
      ...(similarity ? { similarity } : {}),
      warnings,
    };
    const gateResults = evaluateGates(draft, gates);
    if (gateResults.length) draft.gates = gateResults;
    const parsed = reportSchema.safeParse(draft);
    if (!parsed.success) throw new RuntimeFailure(`internal: report does not match its schema: ${parsed.error.issues[0]?.message ?? ''}`);
    const report = parsed.data;
    await writeFileAtomic(path.join(folder.workDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await writeFileAtomic(path.join(folder.workDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    await writeFileAtomic(path.join(folder.workDir, 'summary.txt'), renderSummary(report) + '\n');
    await writeFileAtomic(path.join(folder.workDir, 'metrics.csv'), metricsCsv(report));
    const simCsv = similarityCsv(report);
    if (simCsv) await writeFileAtomic(path.join(folder.workDir, 'similarity.csv'), simCsv);
    try {
      await writeReportHtml(folder.workDir, report);
    } catch (e) {
      // The numbers are the product; a page that fails to render must not cost the run.
      opts.onStage?.(`warning: report.html could not be rendered (${errorMessage(e)}); rerun \`layerprobe report\` on the run folder`);
    }
    const outDir = await folder.commit();
    return { outDir, report, gates: gateResults, passed: gateResults.every((g) => g.passed) };
  } catch (e) {
    await folder.abort();
    throw e;
  }
}
