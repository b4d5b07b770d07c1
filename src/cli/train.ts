import cliProgress from 'cli-progress';
import type { CommandModule } from 'yargs';
import { ARCHS, ARCH_DEFAULTS, ACTIVATIONS } from '../train/arch.js';
import type { TrainProgress } from '../train/loop.js';
import { MONITOR_SYNTAX } from '../train/monitor-options.js';
import type { MonitorResult } from '../report/monitor-schema.js';
import { synchronicityText } from '../report/monitor-text.js';
import { SWEEP_KEYS, runSweep, sweepText } from '../train/sweep.js';
import { RECIPE_DEFAULTS, monitorRequest, train } from '../train/train.js';
import { UsageError } from '../errors.js';
import { printJson } from './result-json.js';

interface Args {
  arch: string;
  dataset: string;
  out: string;
  force: boolean;
  epochs?: number;
  lr?: number;
  seed?: number;
  width?: number;
  depth?: number;
  activation?: string;
  heads?: number;
  patch?: number;
  'batch-size'?: number;
  limit?: number;
  'test-limit'?: number;
  monitor?: string;
  'probe-set'?: string;
  sweep?: string[];
  onnx: boolean;
  json: boolean;
  quiet: boolean;
}

interface TrainBar {
  update(p: TrainProgress): void;
  stop(): void;
}

/**
 * Like src/cli/progress.ts, but the bar carries loss and accuracy: a live bar on a terminal, a
 * line every 10 s otherwise (logs, CI), nothing with --quiet or --json.
 */
function makeTrainBar(quiet: boolean): TrainBar {
  if (quiet) return { update() {}, stop() {} };
  const fmt = (p: TrainProgress): { label: string; loss: string; acc: string } => ({
    label: p.phase === 'train' ? `epoch ${p.epoch}/${p.epochs}` : `eval ${p.epoch}/${p.epochs}`,
    loss: p.loss.toFixed(4),
    acc: (100 * p.accuracy).toFixed(2),
  });
  if (process.stderr.isTTY && !process.env.CI) {
    const bar = new cliProgress.SingleBar(
      {
        format: '{label} [{bar}] {value}/{total} | loss {loss} | acc {acc}% | {rate} img/s | ETA {eta_formatted}',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let key = '';
    let start = performance.now();
    return {
      update(p) {
        const k = `${p.phase}${p.epoch}`;
        const rate = Math.round(p.done / Math.max(1e-3, (performance.now() - start) / 1000));
        if (k !== key) {
          if (key) bar.stop();
          key = k;
          start = performance.now();
          bar.start(p.total, p.done, { ...fmt(p), rate: 0 });
        } else bar.update(p.done, { ...fmt(p), rate });
      },
      stop() {
        if (key) bar.stop();
      },
    };
  }
  let last = 0;
  return {
    update(p) {
      const now = performance.now();
      if (p.done !== p.total && now - last < 10_000) return;
      last = now;
      const f = fmt(p);
      process.stderr.write(`${f.label}: ${p.done}/${p.total} images, loss ${f.loss}, accuracy ${f.acc}%\n`);
    },
    stop() {},
  };
}

/** What --json prints of a monitor: everything but the per-checkpoint series and the probe-subset indices (both in monitor.json). */
function monitorSummary(m: MonitorResult): Record<string, unknown> {
  const last = m.checkpoints[m.checkpoints.length - 1];
  return {
    files: ['monitor.json', 'monitor.csv', 'monitor.html'],
    schedule: m.schedule,
    probeSet: { perClass: m.probeSet.perClass, n: m.probeSet.n, seed: m.probeSet.seed },
    layers: m.layers.map((l) => l.id),
    checkpoints: m.checkpoints.length,
    final: last ? { epoch: last.epoch, step: last.step, trainAccuracy: last.trainAccuracy, testAccuracy: last.testAccuracy, layers: last.layers } : null,
    synchronicity: m.synchronicity,
    timing: m.timing,
  };
}

export const trainCommand: CommandModule<object, Args> = {
  command: 'train',
  describe: 'train a reference MLP, CNN or ViT with TF.js and write it with a model card; optionally monitor its hidden layers (--monitor) or sweep a grid (--sweep)',
  builder: (y) =>
    y
      .option('arch', { type: 'string', demandOption: true, describe: `architecture: ${ARCHS.join(' | ')}` })
      .option('dataset', { alias: 'd', type: 'string', default: 'fashion-mnist', describe: 'dataset with train and test splits: a registry name or a folder of train-*/t10k-* IDX files' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'model folder to create (model.json, weights.bin, card.json, MODEL_CARD.md)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing output folder' })
      .option('epochs', { type: 'number', describe: `passes over the training set (default ${ARCHS.map((a) => `${a} ${RECIPE_DEFAULTS[a].epochs}`).join(', ')})` })
      .option('lr', { type: 'number', describe: 'peak learning rate of Adam, reached after warm-up, cosine-decayed to 0 (default 0.001)' })
      .option('seed', { type: 'number', describe: 'seeds initial weights, shuffling and the monitor probe subset (default 0); same seed and backend, same model' })
      .option('width', { type: 'number', describe: `mlp: units per layer (${ARCH_DEFAULTS.mlp.width}); cnn: first conv filters, doubling per block (${ARCH_DEFAULTS.cnn.width}); vit: token width (${ARCH_DEFAULTS.vit.width})` })
      .option('depth', { type: 'number', describe: `mlp: hidden layers (${ARCH_DEFAULTS.mlp.depth}); cnn: conv+pool blocks (${ARCH_DEFAULTS.cnn.depth}); vit: transformer blocks (${ARCH_DEFAULTS.vit.depth})` })
      .option('activation', { type: 'string', choices: [...ACTIVATIONS], describe: 'hidden activation for mlp and cnn (default relu; vit uses gelu)' })
      .option('heads', { type: 'number', describe: `vit: attention heads (${ARCH_DEFAULTS.vit.heads})` })
      .option('patch', { type: 'number', describe: `vit: patch side in pixels (${ARCH_DEFAULTS.vit.patch})` })
      .option('batch-size', { type: 'number', describe: 'images per optimizer step (default 64)' })
      .option('limit', { type: 'number', describe: 'train on this many (reshuffled) training images per epoch; with --epochs, keeps monitored runs and sweeps short on a CPU' })
      .option('test-limit', { type: 'number', describe: 'evaluate on the first N test images only' })
      .option('monitor', {
        type: 'string',
        describe:
          `measure every hidden layer during training (MD-LSM κ, held-out κ, compression, discrimination, linear-probe accuracy) on a fixed probe subset of the training data ` +
          `and write monitor.json/.csv/.html into the model folder: ${MONITOR_SYNTAX}; a bare --monitor is every=1. at 200/class it costs roughly 1–4 s per hidden layer per checkpoint on a CPU (heldout=off, probe=off or a smaller --probe-set cut that)`,
      })
      .option('probe-set', { type: 'string', describe: 'the monitor\'s probe subset: N/class (default 200/class) or N images in all; stratified, seeded by --seed; implies --monitor' })
      .option('sweep', {
        type: 'array',
        string: true,
        describe:
          `train a grid of monitored runs, one per combination: key=v1,v2 … (mlp/cnn: ${SWEEP_KEYS.mlp.join(', ')}; vit: ${SWEEP_KEYS.vit.join(', ')}); ` +
          '--out becomes a sweep folder (cells/<cell>/ model folders, sweep.json/.csv/.html). On a CPU keep it small with --limit and --epochs',
      })
      .option('onnx', { type: 'boolean', default: false, describe: 'also export model.onnx into the folder (checked against TF.js)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}, result {outDir, card, monitor} or {outDir, sweep}' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress output' })
      .example('$0 train --arch mlp --out models/my-mlp', 'a 2×256 ReLU MLP on Fashion-MNIST (about 20 s per epoch on wasm)')
      .example('$0 train --arch cnn --epochs 8 --onnx --out models/my-cnn', 'the reference CNN, with model.onnx beside model.json')
      .example('$0 train --arch vit --width 64 --depth 4 --heads 4 --patch 7 --out models/my-vit', 'a small vision transformer')
      .example('$0 train --arch mlp --activation tanh --seed 3 --out runs/mlp-tanh-3', 'another seed and activation, for comparisons')
      .example('$0 train --arch mlp --epochs 5 --limit 5000 --monitor every=1 --probe-set 200/class --out runs/mlp-monitored', 'κ, C, D and probe accuracy per hidden layer after every epoch (monitor.html)')
      .example('$0 train --arch mlp --monitor every=50steps,heldout=off --probe-set 100/class --epochs 2 --limit 3000 --out runs/mlp-steps', 'a checkpoint every 50 optimizer steps')
      .example('$0 train --arch mlp --sweep activation=relu,tanh width=64,256 --epochs 2 --limit 2000 --probe-set 50/class --out runs/sweep-small', 'a 4-cell grid in about a minute on a CPU (sweep.html)'),
  handler: async (a) => {
    const quiet = a.quiet || a.json;
    const status = (m: string): void => {
      if (!quiet) process.stderr.write(`${m}\n`);
    };
    // An option of another architecture would be dropped without a word; say so instead.
    const foreign = a.arch === 'vit' ? (a.activation !== undefined ? ['activation'] : []) : (['heads', 'patch'] as const).filter((k) => a[k] !== undefined);
    if (foreign.length > 0) {
      throw new UsageError(`--${foreign[0]} does not apply to --arch ${a.arch}`, a.arch === 'vit' ? 'the ViT uses GELU' : '--heads and --patch are ViT options (--arch vit)');
    }
    const common = {
      arch: a.arch,
      dataset: a.dataset,
      out: a.out,
      force: a.force,
      onnx: a.onnx,
      ...(a.seed !== undefined ? { seed: a.seed } : {}),
      ...(a.epochs !== undefined ? { epochs: a.epochs } : {}),
      ...(a.lr !== undefined ? { lr: a.lr } : {}),
      ...(a.width !== undefined ? { width: a.width } : {}),
      ...(a.depth !== undefined ? { depth: a.depth } : {}),
      ...(a.activation !== undefined ? { activation: a.activation } : {}),
      ...(a.heads !== undefined ? { heads: a.heads } : {}),
      ...(a.patch !== undefined ? { patch: a.patch } : {}),
      ...(a['batch-size'] !== undefined ? { batchSize: a['batch-size'] } : {}),
      ...(a.limit !== undefined ? { limit: a.limit } : {}),
      ...(a['test-limit'] !== undefined ? { testLimit: a['test-limit'] } : {}),
      ...(a.monitor !== undefined ? { monitor: a.monitor } : {}),
      ...(a['probe-set'] !== undefined ? { probeSet: a['probe-set'] } : {}),
    };
    if (a.sweep !== undefined) {
      const { outDir, sweep } = await runSweep({ ...common, sweep: a.sweep.map(String), onStatus: status });
      if (a.json) {
        printJson('train', { outDir, sweep });
        return;
      }
      if (!a.quiet) process.stderr.write(sweepText(sweep));
      process.stdout.write(outDir + '\n');
      return;
    }
    // Syntax errors in --monitor / --probe-set exit 2 before anything is opened.
    monitorRequest(common);
    const bar = makeTrainBar(quiet);
    const result = await train({
      ...common,
      onProgress: (p) => bar.update(p),
      onStatus: status,
    }).finally(() => bar.stop());
    if (a.json) {
      printJson('train', { outDir: result.outDir, card: result.card, ...(result.monitor ? { monitor: monitorSummary(result.monitor) } : {}) });
      return;
    }
    if (result.monitor && !a.quiet) process.stderr.write(synchronicityText(result.monitor));
    const m = result.card.metrics;
    if (!a.quiet) {
      process.stderr.write(
        `test accuracy ${(100 * m.testAccuracy).toFixed(2)}%, train accuracy ${(100 * m.trainAccuracy).toFixed(2)}% ` +
          `in ${(result.card.wallTimeSeconds / 60).toFixed(1)} min\n`,
      );
    }
    process.stdout.write(result.outDir + '\n');
  },
};
