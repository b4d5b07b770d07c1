/**
 * The deep-linear experiment (docs/theory.md): a seeded dataset subset or synthetic nearly
 * orthogonal data, a trained network, its layer geometry against the predicted ratio, and the
 * CSV of the result.
 */
import { openDataset } from '../../data/open.js';
import { selectIndices } from '../../data/sampling.js';
import { RuntimeFailure, UsageError } from '../../errors.js';
import { csvLine } from '../../report/csv.js';
import {
  DEEP_LINEAR_DEFINITIONS,
  features,
  layerDims,
  nearlyOrthogonalData,
  orthogonalInit,
  trainDeepLinear,
  type Engine,
  type LabelledData,
} from './net.js';
import {
  geometryFits,
  layerGeometry,
  predictRatio,
  trainingAccuracy,
  weightSpectra,
  type CompressionFit,
  type LayerGeometry,
  type LineFit,
  type RatioPrediction,
} from './geometry.js';

// ---------------------------------------------------------------------------------------------
// Fashion-MNIST (or any dataset openDataset reads)

export interface DatasetSubsetOptions {
  /** Registry name or path, as for `audit --dataset` (default fashion-mnist). */
  dataset?: string;
  split?: 'train' | 'test';
  perClass: number;
  /** Use only classes 0..classes−1 (default: all). */
  classes?: number;
  /** Subtract the subset's mean image (default true). C and D are computed on what the network sees. */
  center?: boolean;
  /** Scale all inputs by one factor so that the mean ‖x‖² is 1 (default true; changes neither C nor D of the input). */
  unitScale?: boolean;
  seed: number;
}

/** A seeded stratified subset as float64 rows (pixels/255, then centred and scaled as asked). */
export async function datasetSubset(o: DatasetSubsetOptions): Promise<LabelledData & { preprocessing: string }> {
  if (!Number.isInteger(o.perClass) || o.perClass < 1) throw new UsageError(`--per-class must be a positive integer, got ${o.perClass}`);
  const ds = await openDataset(o.dataset ?? 'fashion-mnist', { split: o.split ?? 'train' });
  const Kall = ds.classes.length;
  const K = o.classes ?? Kall;
  if (!Number.isInteger(K) || K < 2 || K > Kall) throw new UsageError(`--classes must be an integer in 2..${Kall} for ${ds.name}, got ${o.classes}`);
  const idxAll = selectIndices(ds.labels, Kall, { perClass: o.perClass, seed: o.seed });
  const idx = Int32Array.from(Array.from(idxAll).filter((i) => ds.labels[i]! < K));
  const [h, w, c] = ds.itemShape;
  const d = h * w * c;
  const batch = await ds.read(idx);
  const N = idx.length;
  const X = new Float64Array(N * d);
  for (let i = 0; i < X.length; i++) X[i] = batch.x[i]! / 255;
  const labels = Int32Array.from(batch.labels);
  const steps = ['pixels / 255'];
  if (o.center ?? true) {
    const mu = new Float64Array(d);
    for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) mu[j]! += X[i * d + j]!;
    for (let j = 0; j < d; j++) mu[j]! /= N;
    for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) X[i * d + j]! -= mu[j]!;
    steps.push('minus the subset mean image');
  }
  if (o.unitScale ?? true) {
    let s = 0;
    for (const v of X) s += v * v;
    const f = s > 0 ? 1 / Math.sqrt(s / N) : 1;
    for (let i = 0; i < X.length; i++) X[i]! *= f;
    steps.push(`× ${f.toPrecision(4)} (mean ‖x‖² = 1)`);
  }
  const counts = new Array<number>(K).fill(0);
  for (const k of labels) counts[k]!++;
  if (counts.some((n) => n === 0)) throw new RuntimeFailure(`dataset ${ds.name}: some of classes 0..${K - 1} have no items in the ${o.split ?? 'train'} split`);
  return { X, N, d, K, labels, classNames: ds.classes.slice(0, K), preprocessing: steps.join(', ') };
}

// ---------------------------------------------------------------------------------------------
// The whole experiment

export interface DeepLinearExperimentOptions {
  data: 'synthetic' | 'fashion-mnist';
  depth: number;
  width: number;
  /** Samples per class n. */
  perClass: number;
  /** Synthetic: number of classes (default 3). Fashion-MNIST: first K classes (default all 10). */
  classes?: number;
  /** Synthetic input dimension d (default 50). */
  dim?: number;
  perturbation?: number;
  /** Dataset reference for the real-data setting (default fashion-mnist). */
  dataset?: string;
  center?: boolean;
  steps: number;
  lr: number;
  initScale: number;
  alpha?: number;
  tol?: number;
  schedule?: 'constant' | 'cosine';
  engine?: Engine | 'auto';
  seed: number;
  onProgress?: (step: number, steps: number, loss: number) => void;
}

export interface DeepLinearResult {
  definitions: typeof DEEP_LINEAR_DEFINITIONS;
  setting: {
    data: 'synthetic' | 'fashion-mnist';
    dataset: string | null;
    preprocessing: string | null;
    depth: number;
    width: number;
    dims: number[];
    K: number;
    d: number;
    N: number;
    perClass: number;
    perturbation: number | null;
    lr: number;
    schedule: 'constant' | 'cosine';
    maxSteps: number;
    tol: number;
    initScale: number;
    alpha: number;
    engine: Engine;
    seed: number;
  };
  training: {
    stepsRun: number;
    initialLoss: number;
    finalLoss: number;
    converged: boolean;
    trainAccuracy: number;
    lossHistory: { step: number; loss: number }[];
    elapsedMs: number;
  };
  layers: LayerGeometry[];
  compressionFit: CompressionFit | null;
  /** C_l/C_{l−1} for the hidden→hidden steps (l = 2..L−1). */
  hiddenRatios: number[];
  /** max/min of hiddenRatios (1 = exactly geometric). */
  hiddenRatioSpread: number | null;
  discriminationFit: LineFit | null;
  prediction: RatioPrediction;
  weights: { layer: number; shape: [number, number]; topMean: number; tailMean: number | null; singularValues: number[] }[];
}

/** Build the data, train from an orthogonal init, and measure every layer. */
export async function deepLinearExperiment(o: DeepLinearExperimentOptions): Promise<DeepLinearResult> {
  const alpha = o.alpha ?? 1;
  let data: LabelledData;
  let preprocessing: string | null = null;
  if (o.data === 'synthetic') {
    data = nearlyOrthogonalData({ K: o.classes ?? 3, perClass: o.perClass, d: o.dim ?? 50, perturbation: o.perturbation ?? 1, seed: o.seed });
  } else {
    const sub = await datasetSubset({ dataset: o.dataset ?? 'fashion-mnist', perClass: o.perClass, ...(o.classes !== undefined ? { classes: o.classes } : {}), ...(o.center !== undefined ? { center: o.center } : {}), seed: o.seed });
    preprocessing = sub.preprocessing;
    data = sub;
  }
  const dims = layerDims(data.d, o.width, data.K, o.depth);
  const engine: Engine = o.engine === undefined || o.engine === 'auto' ? (data.N * Math.max(...dims) * Math.max(...dims) <= 2e6 ? 'float64' : 'tfjs') : o.engine;
  const tol = o.tol ?? (engine === 'float64' ? 1e-12 : 1e-9);
  const init = orthogonalInit(dims, o.initScale, o.seed);
  const tr = await trainDeepLinear(init, data, { lr: o.lr, steps: o.steps, alpha, tol, engine, schedule: o.schedule ?? 'constant', ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  const feats = await features(tr.net, data.X, data.N, engine);
  for (const [l, H] of feats.entries()) {
    for (const v of H) if (!Number.isFinite(v)) throw new RuntimeFailure(`layer ${l} features are not finite after training`, 'use a smaller --lr');
  }
  const layers = layerGeometry(feats, dims, data.labels, data.K);
  const fits = geometryFits(layers);
  const spectra = await weightSpectra(tr.net, data.K);
  const prediction = predictRatio(spectra, data.N / data.K, alpha);
  return {
    definitions: DEEP_LINEAR_DEFINITIONS,
    setting: {
      data: o.data,
      dataset: o.data === 'synthetic' ? null : o.dataset ?? 'fashion-mnist',
      preprocessing,
      depth: o.depth,
      width: o.width,
      dims,
      K: data.K,
      d: data.d,
      N: data.N,
      perClass: data.N / data.K,
      perturbation: o.data === 'synthetic' ? o.perturbation ?? 1 : null,
      lr: o.lr,
      schedule: o.schedule ?? 'constant',
      maxSteps: o.steps,
      tol,
      initScale: o.initScale,
      alpha,
      engine,
      seed: o.seed,
    },
    training: {
      stepsRun: tr.stepsRun,
      initialLoss: tr.initialLoss,
      finalLoss: tr.finalLoss,
      converged: tr.converged,
      trainAccuracy: trainingAccuracy(feats[feats.length - 1]!, data.labels, data.K),
      lossHistory: tr.lossHistory,
      elapsedMs: tr.elapsedMs,
    },
    layers,
    compressionFit: fits.compressionFit,
    hiddenRatios: fits.hiddenRatios,
    hiddenRatioSpread: fits.hiddenRatioSpread,
    discriminationFit: fits.discriminationFit,
    prediction,
    weights: spectra,
  };
}

/** Per-layer CSV: layer,kind,dim,compression,discrimination,tr_within,tr_between,max_cosine,ratio. */
export function deepLinearCsv(res: DeepLinearResult): string {
  const lines = ['layer,kind,dim,compression,discrimination,tr_within,tr_between,max_cosine,ratio_to_previous'];
  for (const g of res.layers) lines.push(csvLine([g.layer, g.kind, g.dim, g.compression, g.discrimination, g.trWithin, g.trBetween, g.maxCosine, g.ratio]));
  return lines.join('\n') + '\n';
}

