/**
 * `train()`: one reference model from scratch. Everything that can be wrong with the request
 * (architecture, options, dataset without a training split, output folder) is checked before
 * the first image is decoded; the model folder appears only when complete (temp folder +
 * rename): model.json + weights.bin, card.json + MODEL_CARD.md, and model.onnx on request.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { hashFile } from '../data/hash.js';
import { knownDataset, registryNames } from '../data/registry.js';
import type { PreprocessSpec } from '../data/types.js';
import { RuntimeFailure, UsageError } from '../errors.js';
import { exportOnnx } from '../export/onnx-export.js';
import { createRunFolder, writeFileAtomic } from '../report/run-folder.js';
import { loadTf } from '../runtime/backend.js';
import { saveToDir } from '../runtime/tfjs-io.js';
import { openTfjsModel } from '../runtime/tfjs.js';
import { layerprobeVersion } from '../util/versions.js';
import { ARCHS, ARCH_DEFAULTS, buildModel, checkArchOptions, describeLayers, isArch, type Arch, type ArchOptions } from './arch.js';
import { CARD_FORMAT, CARD_VERSION, cardMarkdown, type ModelCard } from './card.js';
import { loadSplit, openSplits, type TrainingData } from './data.js';
import { registerVitLayers } from '../runtime/tfjs-layers/vit-layers.js';
import { evaluate, fit, type FitHooks, type Recipe, type TrainProgress } from './loop.js';
import { TrainingMonitor } from './monitor.js';
import { PROBE_SET_DEFAULT, parseMonitorSpec, parseProbeSet, probePerClass, selectProbeSet } from './monitor-options.js';
import { renderMonitorHtml } from '../report/monitor-html.js';
import { MONITOR_FILES, type MonitorResult, type MonitorSpec, type ProbeSetSpec } from '../report/monitor-schema.js';
import { monitorCsv } from '../report/monitor-text.js';
import { registerTrainingKernels } from './wasm-kernels.js';

export interface TrainOptions {
  arch: string;
  /** Registry name with train and test splits (`fashion-mnist`), or a folder of train/t10k IDX files. */
  dataset: string;
  /** Model folder to create. */
  out: string;
  /** Where the model ends up, for messages, when `out` is inside a work folder (a sweep's cells). */
  displayOut?: string;
  force?: boolean;
  epochs?: number;
  /** Peak learning rate (Adam). */
  lr?: number;
  seed?: number;
  width?: number;
  depth?: number;
  activation?: string;
  heads?: number;
  patch?: number;
  batchSize?: number;
  warmupSteps?: number;
  /** Train on this many (shuffled) training images per epoch; for smoke tests. */
  limit?: number;
  /** Evaluate on this many test images; for smoke tests. */
  testLimit?: number;
  /** Also measure accuracy on the whole training set with the final weights (default true). */
  evalTrain?: boolean;
  /** Export model.onnx into the folder as well. */
  onnx?: boolean;
  /** Name in the model card (default: the folder's name). */
  name?: string;
  /**
   * Measure the hidden layers during training (monitor.json, monitor.csv, monitor.html in the
   * model folder): a `--monitor` string (`every=1`, `every=500steps,heldout=off`; '' = defaults)
   * or a parsed spec.
   */
  monitor?: string | MonitorSpec;
  /** The monitor's probe subset of the training data: `200/class`, `2000`, or a parsed spec (default 200/class). Implies `monitor`. */
  probeSet?: string | ProbeSetSpec;
  /** Both splits already decoded (sweeps train many models on one dataset); `dataset` then only names it. */
  data?: TrainingData;
  onProgress?: (p: TrainProgress) => void;
  /** One-line status messages (loading data, evaluating, saving). */
  onStatus?: (message: string) => void;
}

export interface TrainResult {
  outDir: string;
  card: ModelCard;
  /** The monitor's record, when monitoring was asked for. */
  monitor?: MonitorResult;
}

/** The monitor request of a TrainOptions, parsed (UsageError on bad syntax); null when not monitoring. */
export function monitorRequest(opts: Pick<TrainOptions, 'monitor' | 'probeSet'>): { spec: MonitorSpec; probeSet: ProbeSetSpec } | null {
  if (opts.monitor === undefined && opts.probeSet === undefined) return null;
  const spec = opts.monitor === undefined ? parseMonitorSpec('') : typeof opts.monitor === 'string' ? parseMonitorSpec(opts.monitor) : opts.monitor;
  const probeSet = opts.probeSet === undefined ? PROBE_SET_DEFAULT : typeof opts.probeSet === 'string' ? parseProbeSet(opts.probeSet) : opts.probeSet;
  return { spec, probeSet };
}

export const RECIPE_DEFAULTS: Record<Arch, { epochs: number; lr: number; batchSize: number; warmupSteps: number }> = {
  mlp: { epochs: 15, lr: 1e-3, batchSize: 64, warmupSteps: 0 },
  cnn: { epochs: 8, lr: 1e-3, batchSize: 64, warmupSteps: 0 },
  vit: { epochs: 10, lr: 1e-3, batchSize: 64, warmupSteps: 500 },
};

const PREPROCESS: PreprocessSpec = { scale: 255, layout: 'NHWC' };

function positiveInt(v: number, flag: string): number {
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${flag} must be a positive integer (got ${v})`);
  return v;
}

function describeArch(arch: Arch, o: ArchOptions): string {
  if (arch === 'mlp') return `MLP: flatten → ${o.depth}× dense(${o.width}, ${o.activation}) → dense(classes)`;
  if (arch === 'cnn') {
    const blocks = Array.from({ length: o.depth }, (_, i) => `conv(${o.width * 2 ** i}, 3×3, ${o.activation}) → maxpool 2×2`).join(' → ');
    return `CNN: ${blocks} → flatten → dense(${4 * o.width}, ${o.activation}) → dense(classes)`;
  }
  return (
    `ViT: ${o.patch}×${o.patch} patches → linear embedding (${o.width}) → class token + learned positions → ` +
    `${o.depth}× pre-norm transformer block (${o.heads} heads, MLP ${2 * o.width}, GELU) → LayerNorm → class token → dense(classes)`
  );
}

async function fileEntry(file: string): Promise<{ bytes: number; sha256: string }> {
  return { bytes: (await fs.stat(file)).size, sha256: await hashFile(file) };
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const status = opts.onStatus ?? (() => undefined);
  if (!isArch(opts.arch)) throw new UsageError(`unknown architecture \`${opts.arch}\` (use one of ${ARCHS.join(', ')})`);
  const arch = opts.arch;
  const defaults = RECIPE_DEFAULTS[arch];
  const archOpts: ArchOptions = {
    ...ARCH_DEFAULTS[arch],
    ...(opts.width !== undefined ? { width: opts.width } : {}),
    ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
    ...(opts.activation !== undefined ? { activation: opts.activation as ArchOptions['activation'] } : {}),
    ...(opts.heads !== undefined ? { heads: opts.heads } : {}),
    ...(opts.patch !== undefined ? { patch: opts.patch } : {}),
  };
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer (got ${seed})`);
  const lr = opts.lr ?? defaults.lr;
  if (!(lr > 0) || !Number.isFinite(lr)) throw new UsageError(`--lr must be a positive number (got ${lr})`);
  const recipe: Recipe = {
    epochs: positiveInt(opts.epochs ?? defaults.epochs, 'epochs'),
    lr,
    batchSize: positiveInt(opts.batchSize ?? defaults.batchSize, 'batch-size'),
    warmupSteps: opts.warmupSteps ?? defaults.warmupSteps,
    scale: PREPROCESS.scale!,
    ...(opts.limit !== undefined ? { limit: positiveInt(opts.limit, 'limit') } : {}),
    ...(opts.testLimit !== undefined ? { testLimit: positiveInt(opts.testLimit, 'test-limit') } : {}),
  };
  if (!Number.isInteger(recipe.warmupSteps) || recipe.warmupSteps < 0) throw new UsageError(`warm-up steps must be a non-negative integer`);
  const monitorReq = monitorRequest(opts);

  // The output folder first: it is the cheapest check, and opening a dataset reads and hashes it.
  const folder = await createRunFolder(opts.out, { force: opts.force ?? false });
  try {
    let data: TrainingData;
    if (opts.data) {
      data = opts.data;
      checkArchOptions(arch, archOpts, data.train.itemShape);
    } else {
      const splits = await openSplits(opts.dataset);
      checkArchOptions(arch, archOpts, splits.train.itemShape);
      if (splits.train.classes.length !== splits.test.classes.length) {
        throw new UsageError(`dataset \`${opts.dataset}\`: train has ${splits.train.classes.length} classes, test ${splits.test.classes.length}`);
      }
      if (monitorReq) probePerClass(monitorReq.probeSet, splits.train.classes.length);
      status(`loading ${splits.name} (train ${splits.train.labels.length}, test ${splits.test.labels.length} images)`);
      data = { name: splits.name, train: await loadSplit(splits.train), test: await loadSplit(splits.test) };
    }
    const { tf, backend, version } = await loadTf();
    if (backend === 'wasm') registerTrainingKernels(tf);
    registerVitLayers(tf);
    const model = buildModel(tf, arch, archOpts, data.train.itemShape, data.train.classes.length, seed);
    let card: ModelCard;
    let monitorResult: MonitorResult | undefined;
    try {
      let monitor: TrainingMonitor | null = null;
      let hooks: FitHooks | undefined;
      if (monitorReq) {
        const K = data.train.classes.length;
        const asked = probePerClass(monitorReq.probeSet, K);
        const probeSet = selectProbeSet(data.train.labels, K, asked, seed);
        // A class with fewer training images than asked gives all of them: record what was taken.
        const taken = new Array<number>(K).fill(0);
        for (const i of probeSet) taken[data.train.labels[i]!]!++;
        const perClass = Math.max(...taken);
        if (perClass < asked) status(`warning: --probe-set asks ${asked} per class, but no class has more than ${perClass} training images; using ${probeSet.length} in all`);
        if (recipe.limit !== undefined && probeSet.length > 2 * recipe.limit) {
          status(`warning: the probe subset (${probeSet.length} images) is more than twice the ${recipe.limit} images trained on per epoch; monitoring will take far longer than training (lower --probe-set)`);
        }
        const m = new TrainingMonitor(tf, model, data.train, { spec: monitorReq.spec, probeSet, perClass, seed, scale: recipe.scale, onStatus: status });
        monitor = m;
        hooks = { schedule: monitorReq.spec, onCheckpoint: async (c) => void (await m.measure(c)) };
        status(`monitoring ${m.layers.map((l) => l.id).join(', ')} on ${probeSet.length} training images, every ${monitorReq.spec.every} ${monitorReq.spec.unit}${monitorReq.spec.every === 1 ? '' : 's'}`);
      }
      status(`training ${arch} (${model.countParams().toLocaleString('en')} parameters) on ${backend}`);
      const history = await fit(tf, model, data, recipe, seed, opts.onProgress, hooks);
      if (monitor) monitorResult = monitor.result(data.train.classes, history.reduce((s, e) => s + e.seconds, 0));
      const last = history[history.length - 1]!;
      let trainEval = { loss: last.trainLoss, accuracy: last.trainAccuracy };
      if (opts.evalTrain !== false) {
        status('measuring accuracy on the training set with the final weights');
        const ev = await evaluate(tf, model, data.train, recipe.scale, {
          ...(recipe.limit !== undefined ? { limit: recipe.limit } : {}),
          onBatch: (done, total, l, a) => opts.onProgress?.({ phase: 'evaluate', epoch: recipe.epochs, epochs: recipe.epochs, done, total, loss: l, accuracy: a }),
        });
        trainEval = { loss: ev.loss, accuracy: ev.accuracy };
      }
      status(`saving to ${opts.displayOut ?? opts.out}`);
      await model.save(saveToDir(folder.workDir));
      const name = opts.name ?? path.basename(path.resolve(opts.out));
      const known = registryNames().includes(data.name) ? knownDataset(data.name) : null;
      card = {
        format: CARD_FORMAT,
        version: CARD_VERSION,
        name,
        createdAt: new Date().toISOString(),
        layerprobeVersion: layerprobeVersion(),
        architecture: {
          arch,
          options: archOpts,
          summary: describeArch(arch, archOpts),
          params: model.countParams(),
          inputShape: [null, ...data.train.itemShape],
          layers: describeLayers(model),
          defaultLayers: [],
        },
        preprocess: PREPROCESS,
        dataset: {
          name: data.name,
          classes: data.train.classes,
          ...(known ? { homepage: known.homepage, license: known.license } : {}),
          train: { count: recipe.limit ?? data.train.n, files: data.train.source.files.map((f) => ({ path: path.basename(f.path), sha256: f.sha256 })) },
          test: { count: recipe.testLimit ?? data.test.n, files: data.test.source.files.map((f) => ({ path: path.basename(f.path), sha256: f.sha256 })) },
        },
        recipe: {
          ...recipe,
          optimizer: 'Adam (β1 0.9, β2 0.999, ε 1e-7)',
          loss: 'softmax cross-entropy on logits',
          schedule: recipe.warmupSteps > 0 ? `linear warm-up over ${recipe.warmupSteps} steps, then cosine decay to 0` : 'cosine decay to 0',
          shuffle: 'training set reshuffled every epoch with layerprobe Rng(seed)',
          initialisation: 'Glorot-uniform kernels and truncated-normal(0.02) embeddings, seeded from the run seed; zero biases',
        },
        seed,
        backend: { name: `tfjs ${backend}`, tfjs: version, node: process.versions.node },
        metrics: { trainAccuracy: trainEval.accuracy, trainLoss: trainEval.loss, testAccuracy: last.testAccuracy, testLoss: last.testLoss, history },
        wallTimeSeconds: 0,
      };
      if (monitorResult) {
        card.monitor = {
          files: Object.values(MONITOR_FILES),
          schedule: monitorResult.schedule,
          probeSet: { perClass: monitorResult.probeSet.perClass, n: monitorResult.probeSet.n },
          layers: monitorResult.layers.map((l) => l.id),
          checkpoints: monitorResult.checkpoints.length,
          bestTrackingLayer: monitorResult.synchronicity.best,
          seconds: monitorResult.timing.monitorSeconds,
        };
      }
    } finally {
      model.dispose();
    }
    // Loading back through the toolkit's own reader both proves the files and gives the default layers.
    const runner = await openTfjsModel(path.join(folder.workDir, 'model.json'));
    card.architecture.defaultLayers = runner.layers().filter((l) => l.defaultSelected).map((l) => l.id);
    await runner.dispose();
    if (opts.onnx) {
      status('exporting model.onnx');
      await exportOnnx({ model: path.join(folder.workDir, 'model.json'), out: path.join(folder.workDir, 'model.onnx') });
    }
    if (monitorResult) {
      status('writing monitor.json, monitor.csv, monitor.html');
      await writeMonitorFiles(folder.workDir, monitorResult, `layerprobe training monitor — ${card.name}`);
    }
    const files: Record<string, { bytes: number; sha256: string }> = {};
    const written = ['model.json', 'weights.bin', ...(opts.onnx ? ['model.onnx'] : []), ...(monitorResult ? Object.values(MONITOR_FILES) : [])];
    for (const f of written) files[f] = await fileEntry(path.join(folder.workDir, f));
    card.files = files;
    card.wallTimeSeconds = (performance.now() - started) / 1000;
    await writeCard(folder.workDir, card);
    const outDir = await folder.commit();
    return { outDir, card, ...(monitorResult ? { monitor: monitorResult } : {}) };
  } catch (e) {
    await folder.abort();
    throw e;
  }
}

/** monitor.json, monitor.csv and monitor.html into a (work) folder, each written atomically. */
export async function writeMonitorFiles(dir: string, r: MonitorResult, title: string): Promise<void> {
  await writeFileAtomic(path.join(dir, MONITOR_FILES.json), JSON.stringify(r, null, 2) + '\n');
  await writeFileAtomic(path.join(dir, MONITOR_FILES.csv), monitorCsv(r));
  await writeFileAtomic(path.join(dir, MONITOR_FILES.html), await renderMonitorHtml(r, title));
}

export async function writeCard(dir: string, card: ModelCard): Promise<void> {
  try {
    await fs.writeFile(path.join(dir, 'card.json'), JSON.stringify(card, null, 2) + '\n');
    await fs.writeFile(path.join(dir, 'MODEL_CARD.md'), cardMarkdown(card));
  } catch (e) {
    throw new RuntimeFailure(`cannot write the model card in ${dir}: ${(e as Error).message}`);
  }
}
