/**
 * The audit's options, defaults and the checks that need no data (gates, --ci, buffer sizes, the
 * random-layer baseline's settings, class counts of the selection). See pipeline/audit.ts.
 */
import type { OpenDatasetOptions } from '../data/open.js';
import { UsageError } from '../errors.js';
import type { Report } from '../report/schema.js';
import { checkGateMetrics, parseGate, type Gate, type GateResult } from '../report/gates.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import type { CkaMethod } from '../metrics/cka.js';
import type { PhaseInset } from '../metrics/baseline/inset.js';
import { BASELINE_GROUPS } from './baseline.js';
import type { Engine } from '../runtime/tfjs-onnx/engine.js';
import { type ModelOptions, type PreparedData, type SamplingOptions } from './prepare.js';

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

/** The random-layer baseline is on unless `baseline: 'none'`. */
export function baselineOn(opts: AuditOptions): boolean {
  return (opts.baseline ?? 'random-layer') === 'random-layer';
}

export function checkBaselineOptions(opts: AuditOptions): void {
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
