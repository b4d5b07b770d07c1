/**
 * The records a monitored training run and a sweep write (monitor.json, sweep.json): their
 * shapes and file names. They live in report/ beside the other report schemas so the renderers
 * (report/monitor-html.ts, report/monitor-text.ts) need nothing from train/, which produces them.
 */
import type { Correlation } from '../stats/correlation.js';

export const MONITOR_FORMAT = 'layerprobe-train-monitor';
export const MONITOR_VERSION = 1;
export const MONITOR_FILES = { json: 'monitor.json', csv: 'monitor.csv', html: 'monitor.html' } as const;

export const SWEEP_FORMAT = 'layerprobe-train-sweep';
export const SWEEP_VERSION = 1;
export const SWEEP_FILES = { json: 'sweep.json', csv: 'sweep.csv', html: 'sweep.html' } as const;

// ---------------------------------------------------------------------------------------------
// The recorded options

export interface CheckpointSchedule {
  unit: 'epoch' | 'step';
  /** Every this many epochs or steps; the last step of training is always a checkpoint. */
  every: number;
  /** Also a checkpoint before the first update. */
  initial: boolean;
}

export interface MonitorSpec extends CheckpointSchedule {
  /** Held-out κ beside the in-sample κ (directions fitted on half of each class). Roughly doubles the κ cost. */
  heldOut: boolean;
  /** Label permutations for κ_null per layer and checkpoint (0: none). Each costs about one κ. */
  permutations: number;
  /** Fit the linear probe per layer and checkpoint. */
  probe: boolean;
}

export interface ProbeSetSpec {
  /** Images per class; a class with fewer training images contributes all it has. */
  perClass?: number;
  /** Images in all, split evenly over the classes (⌊total/K⌋ per class). */
  total?: number;
}

// ---------------------------------------------------------------------------------------------
// monitor.json

export type MonitorReduction = 'none' | 'gap' | 'cls';

export interface MonitoredLayer {
  id: string;
  className: string;
  /** Output shape per item (batch dimension left out). */
  shape: number[];
  /** none: the layer is already a vector; gap: global average over H×W (conv maps, docs/reading-a-report.md); cls: token 0 (ViT class token). */
  reduction: MonitorReduction;
  /** Width after the reduction. */
  dim: number;
}

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
  /** Why no layer is named best (too few checkpoints: the correlations it ranks by are undefined). */
  undetermined?: string;
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
// sweep.json

export type SweepValue = string | number;

/** One axis of the grid as recorded (train/sweep.ts narrows the key to the keys an architecture accepts). */
export interface SweepAxisRecord {
  key: string;
  values: SweepValue[];
}

export interface SweepLayer {
  layer: string;
  /** 1-based, input to output. */
  index: number;
  /** index / number of hidden layers: 1 is the last hidden layer whatever the depth. */
  relativeDepth: number;
  kappa: number | null;
  kappaHeldOut: number | null;
  compression: number | null;
  discrimination: number | null;
  probeAccuracy: number | null;
  /** Synchronicity of κ with training accuracy (Pearson, levels and changes). */
  syncLevels: number | null;
  syncChanges: number | null;
  /** Pearson of the changes with the initial checkpoint left out. */
  syncChangesDuringTraining: number | null;
}

export interface SweepCell {
  name: string;
  /** The cell's model folder inside the sweep folder; null for a failed cell (train() removed it). */
  dir: string | null;
  settings: Record<string, SweepValue>;
  status: 'ok' | 'failed';
  error?: string;
  /** Final weights, on the training images used (card.metrics.trainAccuracy). */
  trainAccuracy: number | null;
  testAccuracy: number | null;
  params: number | null;
  seconds: number;
  monitorSeconds: number | null;
  /** At the last checkpoint (end of training). */
  layers: SweepLayer[];
  bestTrackingLayer: string | null;
  /** κ of the last hidden layer and training accuracy at every checkpoint. */
  lastLayerCurve: { epochProgress: number; kappa: number | null; trainAccuracy: number }[];
}

/** sweep.json; train/sweep.ts SweepResult narrows `arch`, the axis keys and the options to their train types. */
export interface SweepRecord {
  format: typeof SWEEP_FORMAT;
  version: typeof SWEEP_VERSION;
  createdAt: string;
  arch: string;
  axes: SweepAxisRecord[];
  /** What every cell shares. */
  base: {
    dataset: string;
    epochs: number;
    limit: number | null;
    testLimit: number | null;
    seed: number;
    lr: number | null;
    batchSize: number | null;
    /** The architecture options every cell shares (train/arch.ts). */
    options: object;
    monitor: MonitorSpec;
    probeSet: ProbeSetSpec;
  };
  cells: SweepCell[];
  seconds: number;
}
