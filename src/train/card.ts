/**
 * Model cards: `card.json` for programs (its `preprocess` block is a PreprocessSpec the rest of
 * layerprobe reads as is) and `MODEL_CARD.md` for people. Both are written from one object so
 * they cannot disagree.
 */
import type { PreprocessSpec } from '../data/types.js';
import type { Arch, ArchOptions } from './arch.js';
import type { EpochStats, Recipe } from './loop.js';

export const CARD_FORMAT = 'layerprobe-model-card';
export const CARD_VERSION = 1;

export interface CardLayer {
  name: string;
  className: string;
  outputShape: (number | null)[];
  params: number;
}

export interface ModelCard {
  format: typeof CARD_FORMAT;
  version: typeof CARD_VERSION;
  name: string;
  createdAt: string;
  layerprobeVersion: string;
  architecture: {
    arch: Arch;
    options: ArchOptions;
    summary: string;
    params: number;
    /** Input per item, batch first as null. */
    inputShape: (number | null)[];
    layers: CardLayer[];
    /** Layers a probe looks at by default (same ids in model.json and model.onnx). */
    defaultLayers: string[];
  };
  preprocess: PreprocessSpec;
  dataset: {
    name: string;
    classes: readonly string[];
    homepage?: string;
    license?: string;
    train: { count: number; files: { path: string; sha256: string }[] };
    test: { count: number; files: { path: string; sha256: string }[] };
  };
  recipe: Recipe & { optimizer: string; loss: string; schedule: string; shuffle: string; initialisation: string };
  seed: number;
  backend: { name: string; tfjs: string; node: string };
  metrics: {
    trainAccuracy: number;
    trainLoss: number;
    testAccuracy: number;
    testLoss: number;
    history: EpochStats[];
  };
  wallTimeSeconds: number;
  /** Present when the run was monitored (`--monitor`): what monitor.json holds, in brief. */
  monitor?: {
    files: string[];
    schedule: { unit: 'epoch' | 'step'; every: number; initial: boolean };
    probeSet: { perClass: number; n: number };
    layers: string[];
    checkpoints: number;
    bestTrackingLayer: string | null;
    seconds: number;
  };
  /** Filled in by the exporter: what else ships beside model.json. */
  files?: Record<string, { bytes: number; sha256: string }>;
}

function pct(v: number): string {
  return `${(100 * v).toFixed(2)}%`;
}

function shape(s: readonly (number | null)[]): string {
  return `[${s.map((d) => (d === null ? 'N' : String(d))).join(', ')}]`;
}

export function cardMarkdown(c: ModelCard): string {
  const a = c.architecture;
  const r = c.recipe;
  const lines = [
    `# ${c.name}`,
    '',
    `${a.summary}, trained by layerprobe ${c.layerprobeVersion} on ${c.dataset.name} (${c.dataset.train.count.toLocaleString('en')} training images) ` +
      `and evaluated on its ${c.dataset.test.count.toLocaleString('en')} test images.`,
    '',
    '| | |',
    '|---|---|',
    `| test accuracy | **${pct(c.metrics.testAccuracy)}** (loss ${c.metrics.testLoss.toFixed(4)}) |`,
    `| train accuracy | ${pct(c.metrics.trainAccuracy)} (loss ${c.metrics.trainLoss.toFixed(4)}, final weights) |`,
    `| parameters | ${a.params.toLocaleString('en')} |`,
    `| input | ${shape(a.inputShape)} float32, NHWC |`,
    `| preprocessing | pixels / ${c.preprocess.scale ?? 1}, layout ${c.preprocess.layout ?? 'NHWC'} (\`card.json\` → \`preprocess\`) |`,
    `| output | ${c.dataset.classes.length} logits (no softmax): ${c.dataset.classes.join(', ')} |`,
    `| seed | ${c.seed} |`,
    `| backend | ${c.backend.name} (TF.js ${c.backend.tfjs}, Node ${c.backend.node}) |`,
    `| wall time | ${(c.wallTimeSeconds / 60).toFixed(1)} min |`,
    '',
    '## Recipe',
    '',
    `${r.optimizer}, peak learning rate ${r.lr}, ${r.schedule}; ${r.loss}; batch ${r.batchSize}; ${r.epochs} epoch${r.epochs === 1 ? '' : 's'}; ` +
      `${r.shuffle}; ${r.initialisation}.`,
    '',
    '| epoch | train loss | train acc | test loss | test acc | seconds |',
    '|---:|---:|---:|---:|---:|---:|',
    ...c.metrics.history.map(
      (e) => `| ${e.epoch} | ${e.trainLoss.toFixed(4)} | ${pct(e.trainAccuracy)} | ${e.testLoss.toFixed(4)} | ${pct(e.testAccuracy)} | ${e.seconds.toFixed(0)} |`,
    ),
    '',
    'Train loss/accuracy per epoch are running means while the weights moved; the table above reports the final weights.',
    '',
    '## Layers',
    '',
    'Layer ids are the same in `model.json` and `model.onnx`. In the ONNX file 4-D feature maps are NCHW ' +
      '(the TF.js model keeps NHWC); the input is NHWC in both.',
    '',
    '| layer | class | output | params | default |',
    '|---|---|---|---:|:---:|',
    ...a.layers.map((l) => `| \`${l.name}\` | ${l.className} | ${shape(l.outputShape)} | ${l.params.toLocaleString('en')} | ${a.defaultLayers.includes(l.name) ? '✓' : ''} |`),
    '',
    '## Reproduce',
    '',
    '```',
    `layerprobe train --arch ${a.arch} --dataset ${c.dataset.name} --epochs ${r.epochs} --lr ${r.lr} --batch-size ${r.batchSize} ` +
      `--width ${a.options.width} --depth ${a.options.depth}${a.arch === 'vit' ? ` --heads ${a.options.heads} --patch ${a.options.patch}` : ` --activation ${a.options.activation}`} ` +
      `--seed ${c.seed} --out DIR`,
    'layerprobe export --to onnx DIR/model.json --out DIR/model.onnx',
    '```',
    '',
    `Same seed and backend give the same weights; another backend (tfjs-node, cpu) rounds differently.`,
    '',
  ];
  if (c.monitor) {
    const m = c.monitor;
    lines.push(
      '## Monitoring',
      '',
      `Hidden layers ${m.layers.map((l) => `\`${l}\``).join(', ')} were measured at ${m.checkpoints} checkpoints (every ${m.schedule.every} ${m.schedule.unit}${m.schedule.every === 1 ? '' : 's'}` +
        `${m.schedule.initial ? ', and before training' : ''}) on ${m.probeSet.n} training images (${m.probeSet.perClass}/class): MD-LSM κ, compression, discrimination, linear-probe accuracy ` +
        `(${m.seconds.toFixed(1)} s). Curves in \`monitor.html\`, numbers in \`monitor.json\` and \`monitor.csv\`. ` +
        `Layer whose κ tracks training accuracy best: ${m.bestTrackingLayer ? `\`${m.bestTrackingLayer}\`` : 'too few checkpoints to say'}.`,
      '',
    );
  }
  if (c.files) {
    lines.push('## Files', '', '| file | bytes | sha256 |', '|---|---:|---|');
    for (const [f, v] of Object.entries(c.files)) lines.push(`| ${f} | ${v.bytes.toLocaleString('en')} | \`${v.sha256}\` |`);
    lines.push('');
  }
  if (c.dataset.homepage || c.dataset.license) {
    lines.push('## Data', '', `${c.dataset.name}${c.dataset.license ? `, ${c.dataset.license} licence` : ''}${c.dataset.homepage ? ` (${c.dataset.homepage})` : ''}.`, '');
  }
  return lines.join('\n');
}
