/**
 * Monitoring during training (SCIENCE.md §3.1 "synchronicity"): at checkpoints of a training run
 * (every k epochs or every k optimizer steps, and before the first update), measure every hidden
 * layer of the model being trained on one fixed, seeded, stratified probe subset of the training
 * data — MD-LSM κ (one-vs-one mean, worst pair, held-out κ), compression C, discrimination D and a
 * linear probe's held-out accuracy — beside the model's own loss and accuracy on that subset.
 *
 * Activations come from a second tf.model over the same layers (shared weights, hidden outputs
 * and the logits as outputs), run in inference mode; the training weights are read, never
 * written, and the probe subset is drawn with its own Rng, so a monitored run trains exactly the
 * model an unmonitored one does. The metrics are the toolkit's own (src/metrics), called with
 * the audit's saturation guard, so a monitor number at the last checkpoint equals what the
 * metric functions give on the saved model's activations of the same rows.
 *
 * The synchronicity summary correlates each layer's κ(t) with the model's training accuracy(t)
 * on the probe subset (same weights, same rows, same moment), both as levels and as changes
 * between consecutive checkpoints: Pearson, and Spearman with average ranks for ties.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import { RuntimeFailure, UsageError } from '../errors.js';
import { compressionFromSamples, discriminationFromSamples } from '../metrics/geometry.js';
import { linearProbe } from '../metrics/probe.js';
import { MDLSM_DEFINITION, mdlsm } from '../metrics/separability/index.js';
import { DEFINITIONS } from '../metrics/types.js';
import { AUDIT_MAX_DIM_FRACTION } from '../pipeline/layer-metrics.js';
import type { Tf } from '../runtime/backend.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { Rng } from '../util/rng.js';
import { batchOf, type InMemorySplit } from './data.js';
import type { Checkpoint, CheckpointSchedule } from './loop.js';
import { csvLine } from '../report/csv.js';

type LayersModel = tfTypes.LayersModel;
type Tensor = tfTypes.Tensor;
type SymbolicTensor = tfTypes.SymbolicTensor;

export const MONITOR_FORMAT = 'layerprobe-train-monitor';
export const MONITOR_VERSION = 1;
export const MONITOR_FILES = { json: 'monitor.json', csv: 'monitor.csv', html: 'monitor.html' } as const;

// ---------------------------------------------------------------------------------------------
// Options and their syntax

export interface MonitorSpec extends CheckpointSchedule {
  /** Held-out κ beside the in-sample κ (directions fitted on half of each class). Roughly doubles the κ cost. */
  heldOut: boolean;
  /** Label permutations for κ_null per layer and checkpoint (0: none). Each costs about one κ. */
  permutations: number;
  /** Fit the linear probe per layer and checkpoint. */
  probe: boolean;
}

export const MONITOR_DEFAULTS: MonitorSpec = { unit: 'epoch', every: 1, initial: true, heldOut: true, permutations: 0, probe: true };

/** How `--monitor` is written, for help texts and errors. */
export const MONITOR_SYNTAX =
  'every=N (epochs) | every=Nepochs | every=Nsteps, and optionally initial=on|off, heldout=on|off, null=P (label permutations), probe=on|off; ' +
  'comma- or space-separated, e.g. `every=1` or `every=500steps,heldout=off`';

const MONITOR_KEYS = ['every', 'initial', 'heldout', 'null', 'probe'] as const;

function onOff(key: string, v: string): boolean {
  if (/^(on|true|yes|1)$/i.test(v)) return true;
  if (/^(off|false|no|0)$/i.test(v)) return false;
  throw new UsageError(`--monitor ${key}=${v}: use ${key}=on or ${key}=off`);
}

/** Parses `--monitor` (an empty string, as a bare `--monitor` gives, means every epoch). */
export function parseMonitorSpec(text: string): MonitorSpec {
  const spec: MonitorSpec = { ...MONITOR_DEFAULTS };
  const seen = new Set<string>();
  for (const item of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^([A-Za-z-]+)=(.*)$/.exec(item);
    if (!m) throw new UsageError(`--monitor: cannot read \`${item}\` (expected key=value)`, `syntax: ${MONITOR_SYNTAX}`);
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    if (!(MONITOR_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`--monitor: unknown key \`${m[1]}\` (valid keys: ${MONITOR_KEYS.join(', ')})`, `syntax: ${MONITOR_SYNTAX}`);
    }
    if (seen.has(key)) throw new UsageError(`--monitor: \`${key}\` given twice`);
    seen.add(key);
    if (key === 'every') {
      const e = /^([0-9]+)\s*(epochs?|steps?)?$/i.exec(value);
      const n = e ? Number(e[1]) : NaN;
      if (!e || !Number.isSafeInteger(n) || n < 1) {
        throw new UsageError(`--monitor every=${value}: expected a positive whole number of epochs or steps (every=1, every=2epochs, every=500steps)`);
      }
      spec.every = n;
      spec.unit = e[2] && /^step/i.test(e[2]) ? 'step' : 'epoch';
    } else if (key === 'initial') spec.initial = onOff(key, value);
    else if (key === 'heldout') spec.heldOut = onOff(key, value);
    else if (key === 'probe') spec.probe = onOff(key, value);
    else {
      const p = Number(value);
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(p) || p > 100) throw new UsageError(`--monitor null=${value}: expected a whole number of label permutations from 0 to 100`);
      spec.permutations = p;
    }
  }
  return spec;
}

export interface ProbeSetSpec {
  /** Images per class; a class with fewer training images contributes all it has. */
  perClass?: number;
  /** Images in all, split evenly over the classes (⌊total/K⌋ per class). */
  total?: number;
}

export const PROBE_SET_DEFAULT: ProbeSetSpec = { perClass: 200 };
/** Fewer rows per class than this leave the κ and probe splits a handful of rows per side. */
export const MIN_PROBE_PER_CLASS = 10;

/** Parses `--probe-set`: `200/class` (per class) or `2000` (in all, split evenly over the classes). */
export function parseProbeSet(text: string): ProbeSetSpec {
  const t = text.trim();
  const m = /^([0-9]+)\s*(\/\s*class)?$/i.exec(t);
  const n = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--probe-set \`${text}\`: expected N/class (images per class, e.g. 200/class) or N (images in all, split evenly over the classes)`);
  }
  if (m[2]) {
    if (n < MIN_PROBE_PER_CLASS) throw new UsageError(`--probe-set ${t}: at least ${MIN_PROBE_PER_CLASS}/class (κ and the probe split each class in two)`);
    return { perClass: n };
  }
  return { total: n };
}

/** Images per class for K classes; throws when a total leaves fewer than the minimum per class. */
export function probePerClass(spec: ProbeSetSpec, K: number): number {
  const per = spec.perClass ?? Math.floor((spec.total ?? 0) / K);
  if (per < MIN_PROBE_PER_CLASS) {
    const asked = spec.perClass !== undefined ? `${spec.perClass}/class` : String(spec.total);
    throw new UsageError(`--probe-set ${asked}: ${per} per class for ${K} classes; at least ${MIN_PROBE_PER_CLASS} per class are needed (${MIN_PROBE_PER_CLASS * K} in all)`);
  }
  return per;
}

/**
 * The probe subset: for each class, `perClass` of its rows drawn by a seeded shuffle (all of
 * them when it has fewer), returned sorted by row index. Uses its own Rng, not the training one.
 */
export function selectProbeSet(labels: Int32Array, K: number, perClass: number, seed: number): Int32Array {
  const rng = new Rng((Math.imul(seed >>> 0, 0x2545f491) ^ 0x7f4a7c15) >>> 0);
  const byClass: number[][] = Array.from({ length: K }, () => []);
  labels.forEach((y, i) => byClass[y]!.push(i));
  const out: number[] = [];
  for (const rows of byClass) {
    rng.shuffle(rows);
    out.push(...rows.slice(0, perClass));
  }
  return Int32Array.from(out).sort();
}

// ---------------------------------------------------------------------------------------------
// Which layers, and how a layer becomes one vector per image

export type MonitorReduction = 'none' | 'gap' | 'cls';

export interface MonitoredLayer {
  id: string;
  className: string;
  /** Output shape per item (batch dimension left out). */
  shape: number[];
  /** none: the layer is already a vector; gap: global average over H×W (conv maps, SCIENCE.md §8); cls: token 0 (ViT class token). */
  reduction: MonitorReduction;
  /** Width after the reduction. */
  dim: number;
}

const HIDDEN_CLASSES = new Set(['Dense', 'Conv2D', 'TransformerBlock']);

/**
 * The hidden layers of a layerprobe reference model, input to output: every Dense but the
 * logits (mlp, cnn), every Conv2D (reduced by global average pooling), every TransformerBlock
 * (reduced to its class token). The ViT patch embedding is a linear map of the pixels, not a
 * hidden representation, and is left out.
 */
export function monitoredLayers(model: LayersModel): MonitoredLayer[] {
  const output = model.outputs[0]!.sourceLayer.name;
  const out: MonitoredLayer[] = [];
  for (const l of model.layers) {
    const cls = l.getClassName();
    if (!HIDDEN_CLASSES.has(cls) || l.name === output || l.name === 'patch_embed') continue;
    const shape = (l.outputShape as (number | null)[]).slice(1).map((v) => v ?? 0);
    let reduction: MonitorReduction = 'none';
    let dim = shape[0]!;
    if (shape.length === 3) {
      reduction = 'gap';
      dim = shape[2]!;
    } else if (shape.length === 2) {
      reduction = 'cls';
      dim = shape[1]!;
    } else if (shape.length !== 1) continue;
    out.push({ id: l.name, className: cls, shape, reduction, dim });
  }
  if (out.length === 0) throw new RuntimeFailure('the model has no hidden layer to monitor');
  return out;
}

/** Applies a layer's reduction to its batch output (inside a tidy). */
export function reduceLayerOutput(tf: Tf, t: Tensor, reduction: MonitorReduction): Tensor {
  if (reduction === 'gap') return tf.mean(t, [1, 2]);
  if (reduction === 'cls') {
    const [n, , d] = t.shape as [number, number, number];
    return tf.reshape(tf.slice(t, [0, 0, 0], [n, 1, d]), [n, d]);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Results

export interface WorstPairOut {
  /** Class indices. */
  pair: [number, number];
  kappa: number;
}

export interface MonitorLayerPoint {
  layer: string;
  /** MD-LSM κ: one-vs-one mean (in-sample lower bound). */
  kappa: number | null;
  kappaWorst: WorstPairOut | null;
  kappaHeldOut: number | null;
  kappaHeldOutWorst: WorstPairOut | null;
  /** Label-permutation baseline (only with null=P). */
  kappaNull: number | null;
  /** The κ reduction actually applied (saturation guard), e.g. `pca:20`. */
  kappaReduction: string;
  compression: number | null;
  discrimination: number | null;
  probeAccuracy: number | null;
  probeTrainAccuracy: number | null;
  seconds: { kappa: number; geometry: number; probe: number };
}

export interface MonitorCheckpoint {
  index: number;
  epoch: number;
  step: number;
  /** Training progress in epochs (step / steps per epoch): the x axis of every curve. */
  epochProgress: number;
  endOfEpoch: boolean;
  /** The model's loss and accuracy on the probe subset with the weights of this moment. */
  trainLoss: number;
  trainAccuracy: number;
  /** Mean over the batches since the previous checkpoint while the weights moved (null at the initial one). */
  runningLoss: number | null;
  runningAccuracy: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  /** Wall time of this checkpoint's measurements. */
  seconds: number;
  forwardSeconds: number;
  layers: MonitorLayerPoint[];
}

export interface Correlation {
  pearson: number | null;
  spearman: number | null;
  /** Points (checkpoints, or consecutive differences) the correlation is over. */
  n: number;
}

export interface LayerSynchronicity {
  layer: string;
  /** κ(t) against training accuracy(t). */
  levels: Correlation;
  /** Δκ against Δaccuracy between consecutive checkpoints. */
  changes: Correlation;
  /**
   * The same over the checkpoints after the first update only (the initial checkpoint left out):
   * the first, largest step of training otherwise dominates both correlations.
   */
  duringTraining: { levels: Correlation; changes: Correlation };
}

export const SYNC_METRICS = ['kappa', 'kappaHeldOut', 'compression', 'discrimination', 'probeAccuracy'] as const;
export type SyncMetric = (typeof SYNC_METRICS)[number];

export interface Synchronicity {
  definition: string;
  /** The accuracy series: the model's accuracy on the probe subset of the training data at each checkpoint. */
  against: 'trainAccuracy';
  /** κ (in-sample MD-LSM mean) per layer. */
  layers: LayerSynchronicity[];
  /**
   * Layers ordered by how well κ tracks training, best first: by the Pearson correlation of the
   * changes during training (initial checkpoint left out), falling back to all changes, then levels.
   */
  ranking: string[];
  best: string | null;
  /** The same correlations for the other monitored metrics (compression is expected to correlate negatively). */
  byMetric: Record<SyncMetric, LayerSynchronicity[]>;
  note: string;
}

export interface MonitorTiming {
  /** Time spent in the monitor (forward passes and metrics), all checkpoints. */
  monitorSeconds: number;
  /** Training proper: optimizer steps and per-epoch test evaluation, monitor time excluded. */
  trainSeconds: number;
  /** monitorSeconds / trainSeconds. */
  overhead: number;
  perCheckpointSeconds: number;
  forwardSeconds: number;
  kappaSeconds: number;
  geometrySeconds: number;
  probeSeconds: number;
}

export interface MonitorResult {
  format: typeof MONITOR_FORMAT;
  version: typeof MONITOR_VERSION;
  createdAt: string;
  schedule: CheckpointSchedule;
  options: {
    heldOut: boolean;
    permutations: number;
    probe: boolean;
    seed: number;
    kappa: { maxDimFraction: number; heldOutTrainFraction: number };
    probeFit: { trainFraction: number; control: false };
  };
  probeSet: {
    split: 'train';
    perClass: number;
    n: number;
    classCounts: number[];
    seed: number;
    /** Row indices into the training split (file order). */
    indices: number[];
  };
  classes: string[];
  layers: MonitoredLayer[];
  definitions: Record<string, string>;
  checkpoints: MonitorCheckpoint[];
  synchronicity: Synchronicity;
  timing: MonitorTiming;
}

// ---------------------------------------------------------------------------------------------
// Correlations

/** True when a series is constant up to rounding: it has no direction to correlate. */
function constant(v: readonly number[]): boolean {
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of v) {
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
  }
  return hi - lo <= 1e-12 * Math.max(Math.abs(lo), Math.abs(hi));
}

/** Pearson correlation; null with fewer than 3 finite pairs or no variance on either side. */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length) throw new RuntimeFailure(`internal: pearson of ${x.length} and ${y.length} values`);
  const n = x.length;
  if (n < 3) return null;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i]! - mx;
    const b = y[i]! - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  if (constant(x) || constant(y) || !(sxx > 0 && syy > 0)) return null;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Ranks 1..n, ties given the average of the ranks they span. */
export function averageRanks(x: readonly number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const avg = (i + j + 2) / 2;
    for (let t = i; t <= j; t++) r[order[t]![1]] = avg;
    i = j + 1;
  }
  return r;
}

/** Spearman's ρ: Pearson of the average ranks (the tie-corrected form). */
export function spearman(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length) throw new RuntimeFailure(`internal: spearman of ${x.length} and ${y.length} values`);
  if (x.length < 3) return null;
  return pearson(averageRanks(x), averageRanks(y));
}

/** Pearson and Spearman over the pairs where both values are finite. */
export function correlate(x: readonly (number | null)[], y: readonly (number | null)[]): Correlation {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const u = x[i];
    const v = y[i];
    if (typeof u === 'number' && typeof v === 'number' && Number.isFinite(u) && Number.isFinite(v)) {
      a.push(u);
      b.push(v);
    }
  }
  return { pearson: pearson(a, b), spearman: spearman(a, b), n: a.length };
}

/** Consecutive differences; a difference touching a missing value is missing. */
export function differences(x: readonly (number | null)[]): (number | null)[] {
  const out: (number | null)[] = [];
  for (let i = 1; i < x.length; i++) {
    const a = x[i - 1];
    const b = x[i];
    out.push(typeof a === 'number' && typeof b === 'number' && Number.isFinite(a) && Number.isFinite(b) ? b - a : null);
  }
  return out;
}

export const SYNC_DEFINITION =
  'SCIENCE.md §3.1 synchronicity: per layer, Pearson and Spearman (average ranks for ties) correlation between the layer metric at each checkpoint ' +
  'and the model accuracy on the probe subset of the training data at the same checkpoint (levels), and between their changes from one checkpoint to the next (changes)';

function layerSync(checkpoints: readonly MonitorCheckpoint[], layer: string, metric: SyncMetric): LayerSynchronicity {
  const pair = (cps: readonly MonitorCheckpoint[]): { levels: Correlation; changes: Correlation } => {
    const acc = cps.map((c) => c.trainAccuracy);
    const m = cps.map((c) => c.layers.find((l) => l.layer === layer)?.[metric] ?? null);
    return { levels: correlate(m, acc), changes: correlate(differences(m), differences(acc)) };
  };
  return { layer, ...pair(checkpoints), duringTraining: pair(checkpoints.filter((c) => c.step > 0)) };
}

function rankKey(s: LayerSynchronicity): number[] {
  const v = (x: number | null): number => (x === null ? -Infinity : x);
  return [v(s.duringTraining.changes.pearson), v(s.changes.pearson), v(s.levels.pearson)];
}

/** The synchronicity summary of a monitored run. */
export function synchronicity(checkpoints: readonly MonitorCheckpoint[], layers: readonly string[]): Synchronicity {
  const byMetric = {} as Record<SyncMetric, LayerSynchronicity[]>;
  for (const metric of SYNC_METRICS) byMetric[metric] = layers.map((l) => layerSync(checkpoints, l, metric));
  const kappa = byMetric.kappa;
  const ranking = [...kappa]
    .sort((a, b) => {
      const [ka, kb] = [rankKey(a), rankKey(b)];
      for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return kb[i]! > ka[i]! ? 1 : -1;
      return 0;
    })
    .filter((s) => s.changes.pearson !== null || s.levels.pearson !== null)
    .map((s) => s.layer);
  return {
    definition: SYNC_DEFINITION,
    against: 'trainAccuracy',
    layers: kappa,
    ranking,
    best: ranking[0] ?? null,
    byMetric,
    note:
      `${checkpoints.length} checkpoints, ${Math.max(0, checkpoints.length - 1)} changes; correlations need at least 3 points (null otherwise). ` +
      'Over all checkpoints they are dominated by the first, largest step of training; "during training" leaves the initial checkpoint out.',
  };
}

// ---------------------------------------------------------------------------------------------
// The monitor

export interface MonitorSetup {
  spec: MonitorSpec;
  /** Probe-subset rows (indices into `split`), as selectProbeSet gives them. */
  probeSet: Int32Array;
  perClass: number;
  seed: number;
  /** Pixel divisor of the model's preprocessing. */
  scale: number;
  batchSize?: number;
  onStatus?: (message: string) => void;
}

/** κ held-out split: directions fitted on this share of each class. */
const HELD_OUT_FRACTION = 0.5;
/** Linear-probe split (the linearProbe default). */
const PROBE_TRAIN_FRACTION = 0.7;

function finiteOrNull(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function worstOut(w: { k: number; l: number; kappa: number } | null | undefined): WorstPairOut | null {
  return w ? { pair: [w.k, w.l], kappa: w.kappa } : null;
}

/** The metrics the monitor reports for one layer's probe-subset features (also what the tests recompute). */
export async function layerPoint(layer: string, samples: SampleMatrix, spec: MonitorSpec, seed: number): Promise<MonitorLayerPoint> {
  const t0 = performance.now();
  const k = await mdlsm(samples, {
    seed,
    maxDimFraction: AUDIT_MAX_DIM_FRACTION,
    permutations: spec.permutations,
    trainFraction: spec.heldOut ? HELD_OUT_FRACTION : 0,
  });
  const t1 = performance.now();
  const C = compressionFromSamples(samples).value;
  const D = discriminationFromSamples(samples).value;
  const t2 = performance.now();
  let probeAccuracy: number | null = null;
  let probeTrainAccuracy: number | null = null;
  if (spec.probe) {
    const p = await linearProbe(samples, { seed, control: false, trainFraction: PROBE_TRAIN_FRACTION });
    probeAccuracy = finiteOrNull(p.heldOutAccuracy);
    probeTrainAccuracy = finiteOrNull(p.trainAccuracy);
  }
  const t3 = performance.now();
  return {
    layer,
    kappa: finiteOrNull(k.mean),
    kappaWorst: worstOut(k.worst),
    kappaHeldOut: finiteOrNull(k.heldOut?.mean),
    kappaHeldOutWorst: worstOut(k.heldOut?.worst),
    kappaNull: finiteOrNull(k.null?.mean),
    kappaReduction: k.reduction.reduction,
    compression: finiteOrNull(C),
    discrimination: finiteOrNull(D),
    probeAccuracy,
    probeTrainAccuracy,
    seconds: { kappa: (t1 - t0) / 1000, geometry: (t2 - t1) / 1000, probe: (t3 - t2) / 1000 },
  };
}

export class TrainingMonitor {
  readonly layers: MonitoredLayer[];
  readonly checkpoints: MonitorCheckpoint[] = [];
  private readonly features: LayersModel;
  private readonly labels: Int32Array;
  private monitorMs = 0;

  constructor(
    private readonly tf: Tf,
    model: LayersModel,
    private readonly split: InMemorySplit,
    private readonly setup: MonitorSetup,
  ) {
    this.layers = monitoredLayers(model);
    // Shares the layers (and so the weights) of `model`. Never dispose it: a layers model's
    // dispose() releases the weights of layers whose reference count drops to zero, and applying
    // layers symbolically here did not raise their counts.
    const outputs: SymbolicTensor[] = [...this.layers.map((l) => model.getLayer(l.id).output as SymbolicTensor), model.outputs[0]!];
    this.features = tf.model({ inputs: model.inputs, outputs, name: 'layerprobe-monitor' });
    this.labels = Int32Array.from(setup.probeSet, (i) => split.labels[i]!);
  }

  /** Probe-subset features per monitored layer (rows in probe-set order), and the model's loss/accuracy on them. */
  async activations(): Promise<{ X: Float32Array[]; loss: number; accuracy: number }> {
    const { tf } = this;
    const idx = this.setup.probeSet;
    const n = idx.length;
    const bs = this.setup.batchSize ?? 250;
    const X = this.layers.map((l) => new Float32Array(n * l.dim));
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < n; start += bs) {
      const rows = idx.subarray(start, Math.min(n, start + bs));
      const { x, labels } = batchOf(tf, this.split, rows, this.setup.scale);
      const outs = tf.tidy(() => {
        const raw = this.features.predict(x) as Tensor[];
        const logits = raw[raw.length - 1]!;
        const y = tf.tensor1d(labels, 'int32');
        const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(y, logits.shape[1]!), logits, undefined, undefined, tf.Reduction.SUM);
        const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), y), 'int32'));
        return [...this.layers.map((l, i) => reduceLayerOutput(tf, raw[i]!, l.reduction)), loss, hits];
      });
      try {
        for (let i = 0; i < this.layers.length; i++) X[i]!.set((await outs[i]!.data()) as Float32Array, start * this.layers[i]!.dim);
        lossSum += (await outs[this.layers.length]!.data())[0]!;
        correct += (await outs[this.layers.length + 1]!.data())[0]!;
      } finally {
        tf.dispose([x, ...outs]);
      }
    }
    return { X, loss: lossSum / n, accuracy: correct / n };
  }

  /** Measures the model now; the loop's checkpoint hook. */
  async measure(c: Checkpoint): Promise<MonitorCheckpoint> {
    const t0 = performance.now();
    const { X, loss, accuracy } = await this.activations();
    const forwardSeconds = (performance.now() - t0) / 1000;
    const K = this.split.classes.length;
    const ids = Int32Array.from(this.setup.probeSet);
    const points: MonitorLayerPoint[] = [];
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i]!;
      const samples: SampleMatrix = { X: X[i]!, n: ids.length, d: l.dim, K, labels: this.labels, ids };
      for (let j = 0; j < samples.X.length; j++) {
        if (!Number.isFinite(samples.X[j]!)) {
          throw new RuntimeFailure(`layer ${l.id} has non-finite activations at epoch ${c.epoch}, step ${c.step}`, 'training diverged; lower --lr');
        }
      }
      points.push(await layerPoint(l.id, samples, this.setup.spec, this.setup.seed));
    }
    const seconds = (performance.now() - t0) / 1000;
    this.monitorMs += seconds * 1000;
    const cp: MonitorCheckpoint = {
      index: this.checkpoints.length,
      epoch: c.epoch,
      step: c.step,
      epochProgress: c.epochProgress,
      endOfEpoch: c.endOfEpoch,
      trainLoss: loss,
      trainAccuracy: accuracy,
      runningLoss: c.running?.loss ?? null,
      runningAccuracy: c.running?.accuracy ?? null,
      testLoss: c.test?.loss ?? null,
      testAccuracy: c.test?.accuracy ?? null,
      seconds,
      forwardSeconds,
      layers: points,
    };
    this.checkpoints.push(cp);
    const last = points[points.length - 1]!;
    this.setup.onStatus?.(
      `monitor ${c.epoch === 0 && c.step === 0 ? 'initial' : `epoch ${c.epochProgress.toFixed(c.endOfEpoch ? 0 : 2)}`}: ` +
        `train acc ${(100 * accuracy).toFixed(1)}%, κ ${points.map((p) => (p.kappa ?? NaN).toFixed(3)).join(' / ')} ` +
        `(${last.layer} last), ${seconds.toFixed(1)} s`,
    );
    return cp;
  }

  /** The whole record, once training is over; `trainSeconds` is training time without the monitor. */
  result(classes: readonly string[], trainSeconds: number): MonitorResult {
    const { spec, seed, perClass, probeSet } = this.setup;
    const classCounts = new Array<number>(classes.length).fill(0);
    for (const y of this.labels) classCounts[y]!++;
    const sum = (f: (c: MonitorCheckpoint) => number): number => this.checkpoints.reduce((s, c) => s + f(c), 0);
    const sumLayers = (key: keyof MonitorLayerPoint['seconds']): number => sum((c) => c.layers.reduce((s, l) => s + l.seconds[key], 0));
    const monitorSeconds = this.monitorMs / 1000;
    return {
      format: MONITOR_FORMAT,
      version: MONITOR_VERSION,
      createdAt: new Date().toISOString(),
      schedule: { unit: spec.unit, every: spec.every, initial: spec.initial },
      options: {
        heldOut: spec.heldOut,
        permutations: spec.permutations,
        probe: spec.probe,
        seed,
        kappa: { maxDimFraction: AUDIT_MAX_DIM_FRACTION, heldOutTrainFraction: spec.heldOut ? HELD_OUT_FRACTION : 0 },
        probeFit: { trainFraction: PROBE_TRAIN_FRACTION, control: false },
      },
      probeSet: { split: 'train', perClass, n: probeSet.length, classCounts, seed, indices: Array.from(probeSet) },
      classes: [...classes],
      layers: this.layers,
      definitions: {
        kappa: MDLSM_DEFINITION,
        kappaHeldOut: `${MDLSM_DEFINITION}; held-out: directions fitted on a stratified ${HELD_OUT_FRACTION} split, κ_w counted on the rest`,
        compression: DEFINITIONS.compression,
        discrimination: DEFINITIONS.discrimination,
        probeAccuracy: `${DEFINITIONS.probe}; held-out accuracy, ${PROBE_TRAIN_FRACTION} of each class fitted`,
        trainAccuracy: 'top-1 accuracy of the model being trained on the probe subset of the training data, with the weights of the checkpoint',
        runningAccuracy: 'mean top-1 accuracy over the training batches since the previous checkpoint, as the weights moved',
        synchronicity: SYNC_DEFINITION,
      },
      checkpoints: this.checkpoints,
      synchronicity: synchronicity(this.checkpoints, this.layers.map((l) => l.id)),
      timing: {
        monitorSeconds,
        trainSeconds,
        overhead: trainSeconds > 0 ? monitorSeconds / trainSeconds : NaN,
        perCheckpointSeconds: this.checkpoints.length ? monitorSeconds / this.checkpoints.length : 0,
        forwardSeconds: sum((c) => c.forwardSeconds),
        kappaSeconds: sumLayers('kappa'),
        geometrySeconds: sumLayers('geometry'),
        probeSeconds: sumLayers('probe'),
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Files

export const MONITOR_CSV_COLUMNS = [
  'checkpoint', 'epoch', 'step', 'epoch_progress', 'layer', 'layer_index', 'kappa', 'kappa_worst', 'kappa_worst_pair', 'kappa_heldout',
  'kappa_null', 'kappa_reduction', 'compression', 'discrimination', 'probe_accuracy', 'probe_train_accuracy', 'train_loss', 'train_accuracy',
  'running_loss', 'running_accuracy', 'test_loss', 'test_accuracy', 'monitor_seconds',
] as const;

/** monitor.csv: one row per checkpoint and layer. */
export function monitorCsv(r: MonitorResult): string {
  const lines = [MONITOR_CSV_COLUMNS.join(',')];
  for (const c of r.checkpoints) {
    c.layers.forEach((l, i) => {
      const row: (string | number | boolean | null)[] = [
        c.index, c.epoch, c.step, c.epochProgress, l.layer, i + 1, l.kappa, l.kappaWorst?.kappa ?? null,
        l.kappaWorst ? `${r.classes[l.kappaWorst.pair[0]]} vs ${r.classes[l.kappaWorst.pair[1]]}` : null, l.kappaHeldOut, l.kappaNull,
        l.kappaReduction, l.compression, l.discrimination, l.probeAccuracy, l.probeTrainAccuracy, c.trainLoss, c.trainAccuracy,
        c.runningLoss, c.runningAccuracy, c.testLoss, c.testAccuracy, c.seconds,
      ];
      lines.push(csvLine(row));
    });
  }
  return lines.join('\n') + '\n';
}

function fmt(v: number | null, digits = 3): string {
  return v === null ? '—' : v.toFixed(digits);
}

/** The synchronicity table printed at the end of a monitored run. */
export function synchronicityText(r: MonitorResult): string {
  const s = r.synchronicity;
  const w = Math.max(5, ...s.layers.map((l) => l.layer.length));
  const lines = [
    `synchronicity: κ(t) vs training accuracy(t) on the probe subset (${r.checkpoints.length} checkpoints)`,
    `  ${'layer'.padEnd(w)}  levels: Pearson Spearman   changes: Pearson Spearman   during training: levels changes (Pearson)   final κ  held-out κ`,
  ];
  const last = r.checkpoints[r.checkpoints.length - 1];
  for (const l of s.layers) {
    const p = last?.layers.find((x) => x.layer === l.layer);
    lines.push(
      `  ${l.layer.padEnd(w)}  ${fmt(l.levels.pearson).padStart(15)} ${fmt(l.levels.spearman).padStart(8)}   ${fmt(l.changes.pearson).padStart(16)} ${fmt(l.changes.spearman).padStart(8)}   ${fmt(l.duringTraining.levels.pearson).padStart(22)} ${fmt(l.duringTraining.changes.pearson).padStart(7)}             ${fmt(p?.kappa ?? null).padStart(7)}  ${fmt(p?.kappaHeldOut ?? null).padStart(10)}`,
    );
  }
  lines.push(`  tracks training best: ${s.best ?? '— (too few checkpoints)'}${s.ranking.length > 1 ? ` (ranking: ${s.ranking.join(' > ')})` : ''}`);
  const t = r.timing;
  lines.push(
    `  monitor time ${t.monitorSeconds.toFixed(1)} s (${(100 * t.overhead).toFixed(0)}% of ${t.trainSeconds.toFixed(1)} s training; ` +
      `κ ${t.kappaSeconds.toFixed(1)} s, probe ${t.probeSeconds.toFixed(1)} s, forward ${t.forwardSeconds.toFixed(1)} s)`,
  );
  return lines.join('\n') + '\n';
}
