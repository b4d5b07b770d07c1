/**
 * `layerprobe theory deep-linear`: train a deep linear network (MSE to one-hot targets, full-batch
 * GD) on nearly orthogonal synthetic data or a Fashion-MNIST subset and report the layer geometry
 * of docs/theory.md#theory-deep-linear — compression C_l (geometric decay), discrimination D_l (linear growth), the
 * fitted per-layer ratio and the re-derived prediction ρ ≈ ε²/(n/α²)^{1/L}. Argument handling and
 * printing only; the work is in src/theory/deep-linear/.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { withRunFolder } from '../report/run-folder.js';
import { deepLinearCsv, deepLinearExperiment, type DeepLinearResult, type Engine } from '../theory/deep-linear/index.js';
import { formatTable } from '../report/table.js';
import { printJson, resultJson, warningsOf } from './result-json.js';

export interface DeepLinearArgs {
  data: string;
  dataset?: string;
  depth: number;
  width?: number;
  classes?: number;
  'per-class'?: number;
  dim?: number;
  perturbation?: number;
  center: boolean;
  steps?: number;
  lr: number;
  'init-scale': number;
  alpha: number;
  tol?: number;
  schedule: string;
  engine: string;
  seed: number;
  json: boolean;
  quiet: boolean;
  out?: string;
  force: boolean;
}

/** Defaults per setting: the authors' synthetic check, and a small Fashion-MNIST subset. */
export const DEEP_LINEAR_DEFAULTS = {
  synthetic: { width: 50, classes: 3, perClass: 10, dim: 50, steps: 5000 },
  'fashion-mnist': { width: 64, classes: 10, perClass: 100, steps: 3000 },
} as const;

function positiveInt(flag: string, v: number | undefined, min = 1): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${Number.isNaN(v) ? 'a non-number' : v}`);
}

function positive(flag: string, v: number | undefined): void {
  if (v === undefined) return;
  if (!(v > 0) || !Number.isFinite(v)) throw new UsageError(`--${flag} must be a positive number, got ${Number.isNaN(v) ? 'a non-number' : v}`);
}

/** Checks the flags and resolves the per-setting defaults (exit 2 on anything wrong). */
export function deepLinearPlan(a: DeepLinearArgs) {
  const data = a.data === 'fmnist' ? 'fashion-mnist' : a.data;
  if (data !== 'synthetic' && data !== 'fashion-mnist') throw new UsageError(`--data must be synthetic or fashion-mnist, got \`${a.data}\``);
  if (!Number.isInteger(a.depth) || a.depth < 2) {
    throw new UsageError(`--depth must be an integer ≥ 2 (weight matrices, at least one hidden layer), got ${Number.isNaN(a.depth) ? 'a non-number' : a.depth}`);
  }
  positiveInt('width', a.width);
  positiveInt('classes', a.classes, 2);
  positiveInt('per-class', a['per-class']);
  positiveInt('dim', a.dim);
  positiveInt('steps', a.steps, 0);
  if (!(a.lr > 0) || !Number.isFinite(a.lr)) throw new UsageError(`--lr must be > 0, got ${Number.isNaN(a.lr) ? 'a non-number' : a.lr}`);
  positive('init-scale', a['init-scale']);
  positive('alpha', a.alpha);
  if (a.tol !== undefined && !(a.tol >= 0)) throw new UsageError(`--tol must be ≥ 0, got ${a.tol}`);
  if (a.perturbation !== undefined && !(a.perturbation >= 0 && Number.isFinite(a.perturbation))) throw new UsageError(`--perturbation must be ≥ 0, got ${a.perturbation}`);
  if (a.schedule !== 'constant' && a.schedule !== 'cosine') throw new UsageError(`--schedule must be constant or cosine, got \`${a.schedule}\``);
  if (a.engine !== 'auto' && a.engine !== 'float64' && a.engine !== 'tfjs') throw new UsageError(`--engine must be auto, float64 or tfjs, got \`${a.engine}\``);
  if (data === 'synthetic') {
    if (a.dataset !== undefined) throw new UsageError('--dataset applies to --data fashion-mnist only');
  } else {
    if (a.dim !== undefined) throw new UsageError('--dim applies to --data synthetic only (the input dimension is the image size)');
    if (a.perturbation !== undefined) throw new UsageError('--perturbation applies to --data synthetic only');
  }
  const def = DEEP_LINEAR_DEFAULTS[data];
  const width = a.width ?? def.width;
  const classes = a.classes ?? def.classes;
  // Narrower than K, a hidden layer cannot carry K separable class means: the compression law
  // does not apply and the fits would be of a degenerate, flat series.
  if (width < classes) throw new UsageError(`--width ${width} is below the ${classes} classes; the deep-linear analysis needs width ≥ K`);
  return {
    data,
    depth: a.depth,
    width,
    classes,
    perClass: a['per-class'] ?? def.perClass,
    steps: a.steps ?? def.steps,
    dim: data === 'synthetic' ? a.dim ?? DEEP_LINEAR_DEFAULTS.synthetic.dim : undefined,
  } as const;
}

const f = (v: number | null | undefined, digits = 4): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(digits);
};

export function deepLinearTable(r: DeepLinearResult): string {
  const s = r.setting;
  const head =
    s.data === 'synthetic'
      ? `synthetic nearly orthogonal data: K = ${s.K}, n = ${s.perClass} per class, d = ${s.d}, ‖Δ‖_F = ${s.perturbation}`
      : `${s.dataset} (train split): K = ${s.K}, n = ${s.perClass} per class, d = ${s.d}; ${s.preprocessing}`;
  const rows = r.layers.map((g) => [String(g.layer), g.kind, String(g.dim), f(g.compression), f(g.ratio), f(g.discrimination)]);
  const t = r.training;
  const lines = [
    head,
    `deep linear net: L = ${s.depth}, width ${s.width}, orthogonal init ×${s.initScale}, α = ${s.alpha}, GD lr ${s.lr} (${s.schedule}), ${s.engine}`,
    `training: ${t.stepsRun} steps, loss ${f(t.initialLoss)} → ${f(t.finalLoss)}${t.converged ? ` (below ${s.tol})` : ''}, train accuracy ${(100 * t.trainAccuracy).toFixed(1)}%, ${(t.elapsedMs / 1000).toFixed(1)} s`,
    formatTable(['layer', 'kind', 'dim', 'C_l', 'C_l/C_{l-1}', 'D_l'], rows, ['r', 'l', 'r', 'r', 'r', 'r']),
  ];
  const cf = r.compressionFit;
  if (cf) {
    lines.push(`compression: fitted ratio ${f(cf.ratio)} per layer over hidden layers ${cf.layers[0]}..${cf.layers[cf.layers.length - 1]} (R² of ln C ${f(cf.r2)})`);
    if (r.hiddenRatios.length) {
      lines.push(`  hidden→hidden ratios ${r.hiddenRatios.map((x) => f(x)).join(', ')}${r.hiddenRatioSpread !== null ? ` (max/min ${f(r.hiddenRatioSpread, 3)})` : ''}`);
    }
  } else lines.push('compression: no fit (needs at least two hidden layers, i.e. --depth ≥ 3, with C > 0)');
  const df = r.discriminationFit;
  if (df) lines.push(`discrimination: ${df.slope >= 0 ? '+' : ''}${f(df.slope)} per layer (R² ${f(df.r2)})`);
  const p = r.prediction;
  lines.push(
    `prediction (re-derivation, docs/theory.md#theory-deep-linear): ε = ${f(p.epsilon)}, n = ${f(p.n, 1)}, α = ${p.alpha}, L = ${p.depth} → ρ = ε²/(n/α²)^{1/L} = ${f(p.ratio)}; from the weights' own singular values ${f(p.ratioFromWeights)}`,
  );
  if (!t.converged) lines.push(`note: training stopped at --steps ${s.maxSteps} with the loss above ${s.tol}; the law describes trained networks (raise --steps or --lr)`);
  return lines.join('\n');
}

export const deepLinearCommand: CommandModule<object, DeepLinearArgs> = {
  command: 'deep-linear',
  describe: 'train a deep linear net (MSE, full-batch GD) and measure per-layer compression C_l and discrimination D_l (docs/theory.md#theory-deep-linear)',
  builder: (y: Argv) =>
    y
      .option('data', { type: 'string', default: 'synthetic', describe: 'synthetic (nearly orthogonal, the authors\' check) or fashion-mnist (a train-split subset)' })
      .option('dataset', { type: 'string', describe: 'fashion-mnist setting: registry name or IDX folder to read (default fashion-mnist)' })
      .option('depth', { alias: 'L', type: 'number', default: 6, describe: 'number of weight matrices L (hidden layers L−1), ≥ 2' })
      .option('width', { type: 'number', describe: 'hidden width (default 50 synthetic, 64 fashion-mnist)' })
      .option('classes', { alias: 'K', type: 'number', describe: 'classes K (default 3 synthetic; fashion-mnist: the first K of 10, default 10)' })
      .option('per-class', { alias: 'n', type: 'number', describe: 'samples per class n (default 10 synthetic, 100 fashion-mnist)' })
      .option('dim', { type: 'number', describe: 'synthetic input dimension d (default 50; needs K·n ≤ d)' })
      .option('perturbation', { type: 'number', describe: 'synthetic: Frobenius norm of the Gaussian perturbation of the orthonormal samples (default 1)' })
      .option('center', { type: 'boolean', default: true, describe: 'fashion-mnist: subtract the subset mean image (--no-center to keep raw pixels/255); inputs are also scaled to mean ‖x‖² = 1' })
      .option('steps', { alias: 'epochs', type: 'number', describe: 'maximum full-batch GD steps (default 5000 synthetic, 3000 fashion-mnist); training stops early once the loss is below --tol' })
      .option('lr', { type: 'number', default: 0.1, describe: 'learning rate' })
      .option('init-scale', { type: 'number', default: 0.3, describe: 'scale ξ of the orthogonal initialisation' })
      .option('alpha', { type: 'number', default: 1, describe: 'output scale α in the loss (1/N)Σ‖α·f(x) − y‖²' })
      .option('tol', { type: 'number', describe: 'stop once the loss is below this (default 1e-12 float64, 1e-9 tfjs)' })
      .option('schedule', { type: 'string', default: 'constant', describe: 'learning rate: constant, or cosine (lr → lr/10 over --steps, as the authors\' notebook)' })
      .option('engine', { type: 'string', default: 'auto', describe: 'auto (float64 JS for small problems, else TF.js), float64, or tfjs' })
      .option('seed', { type: 'number', default: 0, describe: 'seed for the data, the subset and the initialisation' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout (nothing else there): {command, version, result, warnings}' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress and no table' })
      .option('out', { alias: 'o', type: 'string', describe: 'write result.json and layers.csv (per-layer C, D) to this folder' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing --out folder' })
      .example('$0 theory deep-linear', 'the authors\' synthetic check: K=3, 30 samples in R^50, L=6, width 50, init 0.3, lr 0.1')
      .example('$0 theory deep-linear --alpha 100', 'the same with the output scale of the authors\' notebook (ratio ≈ ε²/(n/α²)^{1/L} moves accordingly)')
      .example('$0 theory deep-linear --data fashion-mnist --per-class 100 --depth 6 --width 64 --steps 3000 --lr 0.5', 'a Fashion-MNIST subset (TF.js)')
      .example('$0 theory deep-linear --depth 8 --json --out dl-run', 'JSON on stdout plus result.json and layers.csv') as unknown as Argv<DeepLinearArgs>,
  handler: async (a) => {
    const plan = deepLinearPlan(a);
    const quiet = a.quiet || a.json;
    let last = 0;
    const onProgress = quiet
      ? undefined
      : (step: number, steps: number, loss: number) => {
          const now = performance.now();
          if (now - last < 5000 && step !== steps) return;
          last = now;
          process.stderr.write(`theory deep-linear: step ${step}/${steps}, loss ${loss.toExponential(3)}\n`);
        };
    // The output folder is claimed first: an existing one is refused before training.
    const res = await withRunFolder(a.out, { force: a.force }, async (dir) => {
      const r = await deepLinearExperiment({
      data: plan.data,
      depth: plan.depth,
      width: plan.width,
      perClass: plan.perClass,
      classes: plan.classes,
      ...(plan.dim !== undefined ? { dim: plan.dim } : {}),
      ...(a.perturbation !== undefined ? { perturbation: a.perturbation } : {}),
      ...(a.dataset !== undefined ? { dataset: a.dataset } : {}),
      center: a.center,
      steps: plan.steps,
      lr: a.lr,
      initScale: a['init-scale'],
      alpha: a.alpha,
      ...(a.tol !== undefined ? { tol: a.tol } : {}),
      schedule: a.schedule as 'constant' | 'cosine',
      engine: a.engine as Engine | 'auto',
      seed: a.seed,
      ...(onProgress ? { onProgress } : {}),
      });
      if (dir) {
        await writeFile(path.join(dir, 'result.json'), resultJson(r) + '\n');
        await writeFile(path.join(dir, 'layers.csv'), deepLinearCsv(r));
      }
      return r;
    });
    if (a.json) printJson('theory deep-linear', res, warningsOf(res));
    else if (!a.quiet) process.stdout.write(deepLinearTable(res) + (a.out ? `\nfiles: ${a.out}/result.json, ${a.out}/layers.csv` : '') + '\n');
  },
};
