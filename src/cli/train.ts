import cliProgress from 'cli-progress';
import type { CommandModule } from 'yargs';
import { ARCHS, ARCH_DEFAULTS, ACTIVATIONS } from '../train/arch.js';
import type { TrainProgress } from '../train/loop.js';
import { RECIPE_DEFAULTS, train } from '../train/train.js';

interface Args {
  arch: string;
  dataset: string;
  out: string;
  force: boolean;
  epochs?: number;
  lr?: number;
  seed: number;
  width?: number;
  depth?: number;
  activation?: string;
  heads?: number;
  patch?: number;
  'batch-size'?: number;
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

export const trainCommand: CommandModule<object, Args> = {
  command: 'train',
  describe: 'train a reference MLP, CNN or ViT with TF.js and write it with a model card',
  builder: (y) =>
    y
      .option('arch', { alias: 'a', type: 'string', demandOption: true, describe: `architecture: ${ARCHS.join(' | ')}` })
      .option('dataset', { alias: 'd', type: 'string', default: 'fashion-mnist', describe: 'dataset with train and test splits: a registry name or a folder of train-*/t10k-* IDX files' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'model folder to create (model.json, weights.bin, card.json, MODEL_CARD.md)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing output folder' })
      .option('epochs', { type: 'number', describe: `passes over the training set (default ${ARCHS.map((a) => `${a} ${RECIPE_DEFAULTS[a].epochs}`).join(', ')})` })
      .option('lr', { type: 'number', describe: 'peak learning rate of Adam, reached after warm-up, cosine-decayed to 0 (default 0.001)' })
      .option('seed', { type: 'number', default: 0, describe: 'seeds initial weights and shuffling; same seed and backend, same model' })
      .option('width', { type: 'number', describe: `mlp: units per layer (${ARCH_DEFAULTS.mlp.width}); cnn: first conv filters, doubling per block (${ARCH_DEFAULTS.cnn.width}); vit: token width (${ARCH_DEFAULTS.vit.width})` })
      .option('depth', { type: 'number', describe: `mlp: hidden layers (${ARCH_DEFAULTS.mlp.depth}); cnn: conv+pool blocks (${ARCH_DEFAULTS.cnn.depth}); vit: transformer blocks (${ARCH_DEFAULTS.vit.depth})` })
      .option('activation', { type: 'string', choices: [...ACTIVATIONS], describe: 'hidden activation for mlp and cnn (default relu; vit uses gelu)' })
      .option('heads', { type: 'number', describe: `vit: attention heads (${ARCH_DEFAULTS.vit.heads})` })
      .option('patch', { type: 'number', describe: `vit: patch side in pixels (${ARCH_DEFAULTS.vit.patch})` })
      .option('batch-size', { type: 'number', describe: 'images per optimizer step (default 64)' })
      .option('onnx', { type: 'boolean', default: false, describe: 'also export model.onnx into the folder (checked against TF.js)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the model card as JSON on stdout' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress output' })
      .example('$0 train --arch mlp --out models/my-mlp', 'a 2×256 ReLU MLP on Fashion-MNIST (about 20 s per epoch on wasm)')
      .example('$0 train --arch cnn --epochs 8 --onnx --out models/my-cnn', 'the reference CNN, with model.onnx beside model.json')
      .example('$0 train --arch vit --width 64 --depth 4 --heads 4 --patch 7 --out models/my-vit', 'a small vision transformer')
      .example('$0 train --arch mlp --activation tanh --seed 3 --out runs/mlp-tanh-3', 'another seed and activation, for comparisons'),
  handler: async (a) => {
    const quiet = a.quiet || a.json;
    const bar = makeTrainBar(quiet);
    const result = await train({
      arch: a.arch,
      dataset: a.dataset,
      out: a.out,
      force: a.force,
      seed: a.seed,
      onnx: a.onnx,
      ...(a.epochs !== undefined ? { epochs: a.epochs } : {}),
      ...(a.lr !== undefined ? { lr: a.lr } : {}),
      ...(a.width !== undefined ? { width: a.width } : {}),
      ...(a.depth !== undefined ? { depth: a.depth } : {}),
      ...(a.activation !== undefined ? { activation: a.activation } : {}),
      ...(a.heads !== undefined ? { heads: a.heads } : {}),
      ...(a.patch !== undefined ? { patch: a.patch } : {}),
      ...(a['batch-size'] !== undefined ? { batchSize: a['batch-size'] } : {}),
      onProgress: (p) => bar.update(p),
      onStatus: (m) => {
        if (!quiet) process.stderr.write(`${m}\n`);
      },
    }).finally(() => bar.stop());
    if (a.json) {
      process.stdout.write(JSON.stringify({ outDir: result.outDir, card: result.card }, null, 2) + '\n');
      return;
    }
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
