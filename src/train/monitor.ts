/**
 * Monitoring during training (docs/metrics/separability.md "synchronicity"): at checkpoints of a training run
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
import type * as tfTypes from '../runtime/tf-types.js';
import { RuntimeFailure } from '../errors.js';
import { compressionFromSamples, discriminationFromSamples } from '../metrics/geometry.js';
import { linearProbe } from '../metrics/probe.js';
import { MDLSM_DEFINITION, mdlsm } from '../metrics/separability/index.js';
import { DEFINITIONS } from '../metrics/types.js';
import { AUDIT_MAX_DIM_FRACTION } from '../pipeline/layer-metrics.js';
import {
  MONITOR_FORMAT,
  MONITOR_VERSION,
  type MonitorCheckpoint,
  type MonitoredLayer,
  type MonitorLayerPoint,
  type MonitorReduction,
  type MonitorResult,
  type MonitorSpec,
  type WorstPairOut,
} from '../report/monitor-schema.js';
import type { Tf } from '../runtime/backend.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { batchOf, type InMemorySplit } from './data.js';
import type { Checkpoint } from './loop.js';
import { SYNC_DEFINITION, synchronicity } from './synchronicity.js';

type LayersModel = tfTypes.LayersModel;
type Tensor = tfTypes.Tensor;
type SymbolicTensor = tfTypes.SymbolicTensor;

// ---------------------------------------------------------------------------------------------
// Which layers, and how a layer becomes one vector per image

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
