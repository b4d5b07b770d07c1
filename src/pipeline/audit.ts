/**
 * `audit`: the main job. One pass over the data per model captures every selected layer; each
 * layer feeds exact streaming statistics (ClassStats) and a bounded stratified sample
 * (SampleBuffer); the metrics of docs/metrics/ are computed from those at the end; the report
 * is validated against its schema and written atomically with its manifest.
 */
import { errorMessage } from '../errors.js';
import { DEFINITIONS, type MetricResult } from '../metrics/types.js';
import { describeModel } from '../report/manifest.js';
import type { LayerReport, Report } from '../report/schema.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import type { LayerPlan } from './capture.js';
import type { MeanPassResult } from '../stats/mean-pass.js';
import { kappaSaturationWarning } from '../metrics/separability/index.js';
import { modelTrend } from './trends.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { activationOf, baselineMetrics, DEFAULT_BASELINE_DRAWS } from './baseline.js';
import { computeLayerMetrics, failedCells, layerMetricGroups, type LayerMetricOptions, type MetricTimings } from './layer-metrics.js';
import { resolveModelPath } from '../runtime/open.js';
import { prepareData, prepareModel, type PreparedData, type PreparedModel } from './prepare.js';
import type { ModelRunner } from '../runtime/types.js';
import { readClassifierHead, type ClassifierHead } from '../runtime/classifier-head.js';
import { checkAccuracies } from './accuracy-check.js';
import { AUDIT_PROBE_GTOL, AUDIT_PROBE_LAMBDA, type AuditModel, type AuditOptions, type AuditResult, type BaselineCaches, PROBE_FOLDS, checkAuditOptions, checkClassCounts, newBaselineCaches } from './audit-options.js';
import { type ModelPasses, checkLayerWidths, classifierOutput, firstPass, probeProjection, secondPass } from './audit-passes.js';
import { type ModelRun, writeAuditRun } from './audit-output.js';

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

// The pieces of the audit, re-exported so callers keep one entry point.
export * from './audit-options.js';
export * from './audit-passes.js';
export * from './audit-output.js';
