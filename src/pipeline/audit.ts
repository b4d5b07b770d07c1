/**
 * `audit`: the main job. One pass over the data per model captures every selected layer; each
 * layer feeds exact streaming statistics (ClassStats) and a bounded stratified sample
 * (SampleBuffer); the metrics of SCIENCE.md §§1–3 are computed from those at the end; the report
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
import { renderSummary } from '../report/summary.js';
import type { MetricGroup } from '../spec/probe-spec.js';
import { capture, type LayerPlan } from './capture.js';
import { modelTrend } from './trends.js';
import { ckaMatrix, CKA_DEFINITION, type CkaMethod } from '../metrics/cka.js';
import { metricsCsv, similarityCsv } from '../report/records.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { RowChunker } from './chunk.js';
import { activationOf, baselineMetrics } from './baseline.js';
import { computeLayerMetrics, type LayerMetricOptions, type MetricTimings } from './layer-metrics.js';
import { resolveModelPath } from '../runtime/open.js';
import { modelDisplayName, prepareData, prepareModel, type ModelOptions, type PreparedData, type SamplingOptions } from './prepare.js';
import { valuesPerItem, type ModelRunner } from '../runtime/types.js';
import { readClassifierHead, type ClassifierHead } from '../runtime/classifier-head.js';

export const DEFAULT_METRICS: MetricGroup[] = ['geometry', 'collapse', 'rank', 'probe'];
/** Rows kept per class and layer for the sample-based metrics. */
export const DEFAULT_BUFFER_PER_CLASS = 200;
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
  /** Measure each layer beside a random Gaussian layer of the same width on the same input (SCIENCE.md §4). */
  baseline?: 'none' | 'random-layer';
  /** Representation similarity between every pair of layers (of all models) on the buffered samples. */
  similarity?: CkaMethod;
  /** Bootstrap confidence level, e.g. 0.95; off when undefined. */
  ci?: number;
  bootstrapReps?: number;
  probeLambda?: number;
  batchSize?: number;
  /** Output folder; default runs/<time>-<name>. */
  out?: string;
  force?: boolean;
  failUnder?: string[];
  failOver?: string[];
  name?: string;
  command?: string;
  onProgress?(model: string, done: number, total: number): void;
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
function checkClassCounts(data: PreparedData): string[] {
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

interface ModelRun {
  report: ModelReport;
  manifest: ManifestModel;
  /** Buffered samples per layer, kept only when similarity is wanted. */
  samples: SampleMatrix[];
}

async function auditModel(spec: AuditModel, data: PreparedData, opts: AuditOptions, metrics: MetricGroup[], warnings: string[], names: Set<string>): Promise<ModelRun> {
  const model = await prepareModel(spec.path, data, { ...spec, reduce: spec.reduce ?? opts.reduce ?? 'auto' });
  // Unique before the run, so that progress and stage lines already name `model-2`.
  const base = model.name;
  for (let i = 2; names.has(model.name); i++) model.name = `${base}-${i}`;
  names.add(model.name);
  try {
    const K = data.dataset.classes.length;
    for (const p of model.plans) {
      if (p.reducer.dim > MAX_AUDIT_DIM) {
        const fits = p.layer.kind === 'conv' ? 'gap' : p.layer.kind === 'tokens' ? 'cls or mean-token' : `project:${Math.min(1024, MAX_AUDIT_DIM)}`;
        throw new UsageError(
          `layer \`${p.layer.id}\` of ${model.name} is ${p.reducer.dim} wide after ${p.reducer.name}, above the audit limit of ${MAX_AUDIT_DIM}`,
          `use --reduce auto, or --reduce ${fits}, which fits`,
        );
      }
    }
    const perClass = opts.bufferPerClass ?? DEFAULT_BUFFER_PER_CLASS;
    const stats = new Map(model.plans.map((p) => [p.layer.id, new ClassStats(K, p.reducer.dim)]));
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
    const out = model.output;
    const outWidth = out ? valuesPerItem(out.shape) : 0;
    const classifier = out !== undefined && outWidth === K;
    if (out && !classifier) warnings.push(`${model.name}: output \`${out.id}\` has ${outWidth} values, not one per class (${K}); model accuracy and NC4 are skipped`);
    const inputDim = valuesPerItem(model.runner.inputShape);
    const inputBuffer = opts.baseline === 'random-layer' ? new SampleBuffer({ K, perClass, seed: data.seed, d: inputDim }) : null;
    let correct = 0;
    let seen = 0;
    const timings = await capture({
      dataset: data.dataset,
      indices: data.indices,
      runner: model.runner,
      plans: model.plans,
      preprocess: model.preprocess,
      batchSize: opts.batchSize ?? 64,
      ...(classifier ? { outputLayerId: out.id } : {}),
      onProgress: (d, t) => opts.onProgress?.(model.name, d, t),
      async onBatch(b) {
        const n = b.raw.shape[0];
        let preds: Int32Array | undefined;
        if (classifier && b.output) {
          preds = argmaxRows(b.output.data, n, K);
          for (let i = 0; i < n; i++) if (preds[i] === b.raw.labels[i]) correct++;
          seen += n;
        }
        if (inputBuffer) inputBuffer.add(b.input.data, n, b.input.data.length / n, b.raw.labels, b.raw.indices, preds);
        for (const plan of model.plans) {
          const feats = b.features.get(plan.layer.id)!;
          await chunkers.get(plan.layer.id)!.push(feats, n, b.raw.labels);
          buffers.get(plan.layer.id)!.add(feats, n, plan.reducer.dim, b.raw.labels, b.raw.indices, preds);
        }
      },
    });
    const tFlush = performance.now();
    for (const c of chunkers.values()) await c.finish();
    timings.sinkMs += performance.now() - tFlush;
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
    const head = metrics.includes('collapse') ? await headForNc3(model.name, model.runner, model.plans, K, warnings) : null;
    const layers: LayerReport[] = [];
    const byGroup: MetricTimings = {};
    const kept: SampleMatrix[] = [];
    const n = model.plans.length;
    let previous = inputBuffer?.matrix();
    for (const [i, plan] of model.plans.entries()) {
      const buffer = buffers.get(plan.layer.id)!;
      const matrix = buffer.matrix();
      if (opts.similarity) kept.push(matrix);
      const forLayer = head && head.layer === plan.layer.id ? { ...layerOpts, classifierWeights: head.W } : layerOpts;
      const results = await computeLayerMetrics(stats.get(plan.layer.id)!, matrix, forLayer, byGroup);
      if (previous) {
        const tb = performance.now();
        results.push(...(await baselineMetrics(previous, plan.reducer.dim, activationOf(plan.layer.op), results, { seed: data.seed, metrics })));
        byGroup.baseline = (byGroup.baseline ?? 0) + performance.now() - tb;
        previous = matrix;
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
    const metricsMs = performance.now() - t0;
    const manifest = await describeModel(model.name, model.runner, model.preprocess, model.plans, undefined, out?.id);
    const accuracy: MetricResult | undefined = classifier
      ? { name: 'accuracy', value: seen ? correct / seen : NaN, definition: DEFINITIONS.accuracy, detail: { n: seen, correct, output: out.id } }
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
        ...(accuracy ? { accuracy: toRecord(accuracy) } : {}),
        layers,
        trend: modelTrend({ layers, ...(accuracy ? { accuracy: toRecord(accuracy) } : {}) }),
        timings: { forwardMs: timings.forwardMs, reduceMs: timings.reduceMs, statsMs: timings.sinkMs, metricsMs, metricsByGroupMs: byGroup, totalMs: timings.totalMs + metricsMs },
      },
    };
  } finally {
    await model.runner.dispose();
  }
}

/** JSON cannot hold NaN: a metric that is undefined for this layer is reported as null. */
function toRecord(r: MetricResult): Report['models'][number]['layers'][number]['metrics'][string] {
  return {
    name: r.name,
    value: Number.isFinite(r.value) ? r.value : null,
    definition: r.definition,
    ...(r.ci ? { ci: r.ci } : {}),
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

export async function audit(opts: AuditOptions): Promise<AuditResult> {
  if (opts.models.length === 0) throw new UsageError('audit needs at least one model (--model or a probe spec)');
  const gates: Gate[] = [...(opts.failUnder ?? []).map((g) => parseGate(g, 'under')), ...(opts.failOver ?? []).map((g) => parseGate(g, 'over'))];
  if (opts.ci !== undefined && !(opts.ci > 0 && opts.ci < 1)) throw new UsageError(`--ci must be a level between 0 and 1, e.g. 0.95 (got ${opts.ci})`);
  const b = opts.bufferPerClass;
  if (b !== undefined && !(Number.isInteger(b) && b >= 2)) throw new UsageError(`--buffer-per-class must be a whole number ≥ 2 (rows kept per class for probes and ranks; got ${b})`);
  const metrics = opts.metrics ?? DEFAULT_METRICS;
  checkGateMetrics(gates, metrics, opts.baseline === 'random-layer');
  // Every model is found before the first one runs: a typo in the last of several models should
  // not cost the time of all the others.
  for (const m of opts.models) await resolveModelPath(m.path);
  const data = await prepareData(opts.dataset, opts.datasetOptions ?? {}, opts);
  const classWarnings = checkClassCounts(data);
  const names = new Set<string>();
  const folder = await createRunFolder(opts.out ?? defaultRunDir(`audit-${opts.name ?? modelDisplayName(opts.models[0]!.path)}`), {
    force: opts.force ?? false,
    inputs: [...opts.models.map((m) => m.path), opts.dataset],
    unique: opts.out === undefined,
  });
  try {
    const warnings: string[] = [...classWarnings];
    const runs: ModelRun[] = [];
    for (const m of opts.models) {
      runs.push(await auditModel(m, data, opts, metrics, warnings, names));
    }
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
        ...(opts.similarity ? { similarity: opts.similarity } : {}),
        ...(opts.baseline === 'random-layer' ? { baseline: 'random-layer' } : {}),
        ...(opts.ci !== undefined ? { ci: opts.ci } : {}),
        sampling: data.sampling,
        batchSize: opts.batchSize ?? 64,
      },
      models: runs.map((r) => r.report),
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
