/**
 * `layerprobe theory clustering`: weight clustering and linear decision boundaries
 * (docs/theory.md#theory-clustering). Trains a small-init two-layer leaky-ReLU net on a seeded linear teacher and
 * prints the time series of cluster coherence, linear agreement and the agreement regime.
 * Argument handling and printing only; the work is in src/theory/clustering/.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { withRunFolder } from '../report/run-folder.js';
import { DEFAULT_ALPHA, clusteringCsv, trainClustering, type ClusteringRecord, type ClusteringResult } from '../theory/clustering/index.js';
import { formatTable } from '../report/table.js';
import { printJson, resultJson, warn } from './result-json.js';

interface ClusteringArgs {
  'input-dim': number;
  hidden: number;
  points: number;
  d?: number;
  m?: number;
  n?: number;
  'n-test'?: number;
  'n-random': number;
  margin: number;
  'label-noise': number;
  activation: string;
  alpha?: number;
  epochs: number;
  lr: number;
  'init-scale': number;
  'output-layer': string;
  every?: number;
  seed: number;
  json: boolean;
  quiet: boolean;
  out?: string;
  force: boolean;
}

const f = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

/** The time series as an aligned terminal table. */
export function clusteringTable(res: ClusteringResult): string {
  const rows = res.records.map((r: ClusteringRecord) => [
    String(r.step),
    r.loss.toExponential(2),
    f(r.trainAccuracy, 3),
    f(r.coherencePlus),
    f(r.coherenceMinus),
    f(r.meanCosinePlus),
    f(r.meanCosineMinus),
    f(r.agreementTrain),
    f(r.agreementTest),
    f(r.agreementRandom),
    f(r.regimeFraction, 3),
  ]);
  const i = res.initial;
  const e = res.final;
  const lines = [
    `two-layer ${res.activation} net (α = ${res.alpha}), d = ${res.d}, m = ${res.m} (G+ ${e.groupPlus}, G− ${e.groupMinus}), output layer ${res.outputLayer}; ` +
      `${res.n} training points${res.margin !== null ? ` from a linear teacher (margin ${res.margin})` : ''}, separable through 0 (HiGHS LP); ` +
      `${res.epochs} full-batch GD steps, lr ${res.lr}, init scale ${res.initScale}, seed ${res.seed}`,
    formatTable(
      ['step', 'loss', 'train acc', 'C+', 'C−', 'cos+', 'cos−', 'agree train', 'agree test', 'agree random', 'regime'],
      rows,
      ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    `coherence C+ ${f(i.coherencePlus)} → ${f(e.coherencePlus)}, C− ${f(i.coherenceMinus)} → ${f(e.coherenceMinus)}; ` +
      `agreement on random inputs ${f(i.agreementRandom)} → ${f(e.agreementRandom)}`,
    res.regimeFirstStep === null
      ? 'agreement regime: never held on every training point'
      : `agreement regime first held on every training point at step ${res.regimeFirstStep}` +
        (res.regimeStableFrom === null ? ', but not at the end' : res.regimeStableFrom === res.regimeFirstStep ? ' and held from then on' : `; held from step ${res.regimeStableFrom} to the end`),
    ...(e.teacherCosine !== null ? [`cos(v_lin, teacher) = ${f(e.teacherCosine)}`] : []),
    `${(res.elapsedMs / 1000).toFixed(1)} s`,
  ];
  return lines.join('\n');
}

export const clusteringCommand: CommandModule<object, ClusteringArgs> = {
  command: 'clustering',
  describe: 'weight clustering → linear boundary (docs/theory.md#theory-clustering): train a small-init two-layer leaky-ReLU net on a linear teacher; coherence, linear agreement, agreement regime',
  builder: (y: Argv) =>
    y
      .option('input-dim', { type: 'number', default: 20, describe: 'input dimension d (was --d)' })
      .option('hidden', { type: 'number', default: 40, describe: 'hidden width m, the number of neurons (was --m)' })
      .option('points', { type: 'number', default: 400, describe: 'training points n (was --n)' })
      // The old spellings, for a command mounted without the main CLI's rewrite (see renameDeprecatedFlags).
      .option('d', { type: 'number', hidden: true })
      .option('m', { type: 'number', hidden: true })
      .option('n', { type: 'number', hidden: true })
      .option('n-test', { type: 'number', describe: 'test points (default: --points)' })
      .option('n-random', { type: 'number', default: 2000, describe: 'random N(0, I) inputs for the agreement on random inputs' })
      .option('margin', { type: 'number', default: 0.5, describe: 'teacher margin γ: every point has |w*ᵀx| ≥ γ (x ~ N(0, I) otherwise)' })
      .option('label-noise', { type: 'number', default: 0, describe: 'share of training labels flipped (the data then usually stop being separable, and the run is refused)' })
      .option('activation', { alias: 'a', type: 'string', default: 'leaky-relu', describe: 'leaky-relu or relu (other activations are not positively homogeneous and are refused)' })
      .option('alpha', { type: 'number', describe: `leaky slope α (default ${DEFAULT_ALPHA}; 0 = ReLU, with a warning)` })
      .option('epochs', { type: 'number', default: 300, describe: 'full-batch gradient-descent steps' })
      .option('lr', { type: 'number', default: 0.5, describe: 'learning rate' })
      .option('init-scale', { type: 'number', default: 1e-3, describe: 'initial ‖w_j‖ (and |v_j| when the output layer is trained)' })
      .option('output-layer', { type: 'string', choices: ['trained', 'fixed'], default: 'trained', describe: 'train v too (from ±init-scale), or fix v_j = ±1/√m' })
      .option('every', { type: 'number', describe: 'record every this many steps (default epochs/20)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed for the teacher, the points, the init and the random inputs' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout (nothing else there): {command, version, result, warnings}' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no table, no warnings' })
      .option('out', { alias: 'o', type: 'string', describe: 'write result.json and series.csv (the time series) to this folder' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing --out folder' })
      .example('$0 theory clustering', 'd = 20, m = 40, 400 points: C± and the linear agreement rise to ≈ 1, the agreement regime sets in')
      .example('$0 theory clustering --init-scale 1', 'large init: the net still fits, but the weights do not cluster')
      .example('$0 theory clustering --activation relu', 'ReLU (α = 0): runs, with a warning that the boundary can degenerate')
      .example('$0 theory clustering --input-dim 50 --hidden 100 --points 2000 --epochs 500 --every 10 --out runs/clustering', 'a bigger run; result.json + series.csv')
      .example('$0 theory clustering --json | jq .final', 'the last record as JSON') as unknown as Argv<ClusteringArgs>,
  handler: async (a) => {
    a['input-dim'] = a.d ?? a['input-dim'];
    a.hidden = a.m ?? a.hidden;
    a.points = a.n ?? a.points;
    for (const [flag, v] of [['input-dim', a['input-dim']], ['hidden', a.hidden], ['points', a.points], ['epochs', a.epochs], ['lr', a.lr], ['init-scale', a['init-scale']], ['margin', a.margin], ['label-noise', a['label-noise']], ['n-random', a['n-random']], ['seed', a.seed]] as const) {
      if (!Number.isFinite(v)) throw new UsageError(`--${flag} expects a number`);
    }
    const quiet = a.quiet || a.json;
    let last = performance.now();
    // The output folder is claimed first: an existing one is refused before minutes of training.
    const res = await withRunFolder(a.out, { force: a.force }, async (dir) => {
      const r = await trainClustering({
        d: a['input-dim'],
        m: a.hidden,
        n: a.points,
        ...(a['n-test'] !== undefined ? { nTest: a['n-test'] } : {}),
        nRandom: a['n-random'],
        margin: a.margin,
        labelNoise: a['label-noise'],
        activation: a.activation,
        ...(a.alpha !== undefined ? { alpha: a.alpha } : {}),
        epochs: a.epochs,
        lr: a.lr,
        initScale: a['init-scale'],
        outputLayer: a['output-layer'] as 'trained' | 'fixed',
        ...(a.every !== undefined ? { every: a.every } : {}),
        seed: a.seed,
        onProgress: (done, total) => {
          if (quiet) return;
          const now = performance.now();
          if (now - last < 5000) return;
          last = now;
          process.stderr.write(`theory clustering: step ${done}/${total}\n`);
        },
      });
      if (dir) {
        await writeFile(path.join(dir, 'result.json'), resultJson(r) + '\n');
        await writeFile(path.join(dir, 'series.csv'), clusteringCsv(r));
      }
      return r;
    });
    // Warnings go to stderr (stdout stays pure JSON under --json); they are in the result too.
    for (const w of res.warnings) warn(w, { quiet: a.quiet });
    if (a.json) {
      printJson('theory clustering', res);
      return;
    }
    if (a.quiet) return;
    process.stdout.write(clusteringTable(res) + '\n' + (a.out ? `files: ${a.out}/{result.json,series.csv}\n` : ''));
  },
};
