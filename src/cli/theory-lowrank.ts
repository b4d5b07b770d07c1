/**
 * `layerprobe theory lowrank`: low-rank structure and the Bayes action (docs/theory.md#theory-lowrank,
 * reconstructed from Shisher–Ornee–Sun's abstract and the Huang–Xu–Zheng–Wornell lineage).
 * Synthetic mode trains a bottleneck on seeded local-regime distributions; model mode reads a
 * classifier's head and compares it with B̃ of a reference model's posteriors on a dataset.
 * Argument handling and printing only; the work is in src/theory/lowrank/.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { withRunFolder } from '../report/run-folder.js';
import { lowrankModel, lowrankSynthetic, type ModelLowrankResult, type SyntheticLowrankResult } from '../theory/lowrank/index.js';
import { formatTable } from '../report/table.js';
import { makeProgress } from './progress.js';
import { printJson, resultJson, warningsOf } from './result-json.js';

/** `0.05,0.2,0.8` or `lo:hi:step` → sorted distinct values, each in (0, 1). */
export function parseEpsilons(text: string | number): number[] {
  const s = String(text).trim();
  let out: number[];
  const range = /^([\d.]+)\s*:\s*([\d.]+)\s*:\s*([\d.]+)$/.exec(s);
  if (range) {
    const [lo, hi, step] = [Number(range[1]), Number(range[2]), Number(range[3])];
    if (!(step > 0) || !(hi >= lo)) throw new UsageError(`--epsilon: bad range \`${s}\` (write lo:hi:step with lo ≤ hi, step > 0)`);
    out = [];
    for (let i = 0; lo + i * step <= hi + 1e-12; i++) out.push(Number((lo + i * step).toPrecision(12)));
  } else {
    out = s.split(',').map((p) => p.trim()).filter(Boolean).map(Number);
  }
  if (out.length === 0 || out.some((v) => !(v > 0 && v < 1))) throw new UsageError(`--epsilon expects values in (0, 1): a list (0.05,0.2,0.8) or lo:hi:step (got \`${s}\`)`);
  return [...new Set(out)].sort((a, b) => a - b);
}

interface LowrankArgs {
  symbols: number;
  classes: number;
  k?: number;
  epsilon: string;
  rank?: number;
  decay: number;
  model?: string;
  reference?: string;
  dataset?: string;
  split?: string;
  limit?: number;
  'per-class'?: number;
  seed: number;
  json: boolean;
  quiet: boolean;
  out?: string;
  force: boolean;
}

const f = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const e = (v: number): string => (Number.isFinite(v) ? v.toExponential(2) : '—');

export function syntheticTable(res: SyntheticLowrankResult): string {
  const rows = res.rows.map((r) => [
    String(r.epsilon),
    f(r.sigma1, 4),
    e(r.energy),
    f(r.maxAngleDeg, 3),
    r.anglesDeg.map((a) => a.toFixed(3)).join(' '),
    f(r.capturedEnergy, 5),
    f(r.optimalEnergy, 5),
    f(r.efficiency, 6),
    `${r.iterations}${r.converged ? '' : '*'}`,
  ]);
  const lines = [
    `|X| = ${res.symbols} symbols, K = ${res.classes} classes, bottleneck k = ${res.k}, perturbation rank ${res.rank} (singular values ∝ ${res.decay}^i), seed ${res.seed}`,
    formatTable(['ε', 'σ1(B̃)', 'Σσ²', 'max θ°', 'principal angles (°)', 'captured', 'optimal', 'captured/optimal', 'iters'], rows, ['r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r']),
    `angles grow with ε: ${res.monotone ? 'yes' : 'no'}` + (res.rows.some((r) => !r.converged) ? '   (* = fit stopped before ‖∇‖ ≤ 1e-5·σ1)' : ''),
    'θ: head (√P(y)-scaled, P(y)-centred) vs top-k singular vectors of B̃; reconstructed from Shisher–Ornee–Sun (abstract) and Huang–Xu–Zheng–Wornell (docs/theory.md#theory-lowrank)',
  ];
  return lines.join('\n');
}

export function modelTable(res: ModelLowrankResult): string {
  const rows = res.rows.map((r) => [
    String(r.k),
    f(r.sigma, 4),
    f(r.raw.maxAngleDeg, 2),
    f(r.whitened?.maxAngleDeg, 2),
    f(r.whitenedSelf?.maxAngleDeg, 2),
    f(r.whitened?.capturedEnergy ?? r.raw.capturedEnergy, 4),
    f(r.raw.optimalEnergy, 4),
  ]);
  const lines = [
    `${res.model}: head ${res.head.description}, K = ${res.K}, d = ${res.head.d} (features \`${res.head.inputLayer ?? '—'}\`)`,
    `reference ${res.reference} on ${res.dataset}${res.split ? ` (${res.split})` : ''}, N = ${res.items} items, P(x) = 1/N; accuracy model ${f(res.accuracy.model)}, reference ${f(res.accuracy.reference)}, agreement ${f(res.accuracy.agreement)}`,
    `locality: σ1(B̃) = ${f(res.referenceDtm.sigma1, 4)} (1 = far from local), Σσ² = ${f(res.referenceDtm.energy, 3)}; model's own posteriors σ1 = ${f(res.selfDtm.sigma1, 4)}`,
    formatTable(['k', 'σk(B̃)', 'max θ° raw head', 'max θ° whitened', 'max θ° vs own B̃', 'captured', 'optimal'], rows, ['r', 'r', 'r', 'r', 'r', 'r', 'r']),
    'raw: top-k of √P(y)-scaled centred W; whitened: of the same head times the feature covariance (invariant to feature reparametrisation); captured = share of Σσ² in the (whitened) head subspace',
    'reconstructed from Shisher–Ornee–Sun (abstract) and Huang–Xu–Zheng–Wornell (docs/theory.md#theory-lowrank)',
  ];
  return lines.join('\n');
}

export const lowrankCommand: CommandModule<object, LowrankArgs> = {
  command: 'lowrank',
  describe: 'low-rank structure and the Bayes action (docs/theory.md#theory-lowrank): head vs top-k singular vectors of the divergence transition matrix B̃',
  builder: (y: Argv) =>
    y
      .option('symbols', { type: 'number', default: 40, describe: 'synthetic: size |X| of the input alphabet' })
      .option('classes', { type: 'number', default: 8, describe: 'synthetic: number of classes K' })
      .option('k', { type: 'number', describe: 'synthetic: bottleneck width (default 2; meaningful with k < K − 1); model mode: show only this k' })
      .option('epsilon', { type: 'string', default: '0.05,0.1,0.2,0.4,0.8', describe: 'synthetic: dependence values ε ∈ (0,1), a list (0.05,0.2) or lo:hi:step' })
      .option('rank', { type: 'number', describe: 'synthetic: rank of the perturbation of P(y|x) (default min(K − 1, |X| − 1))' })
      .option('decay', { type: 'number', default: 0.6, describe: 'synthetic: ratio of consecutive singular values of the perturbation' })
      .option('model', { alias: 'm', type: 'string', describe: 'model mode: classifier (.onnx, TF.js model.json, or a folder) whose head is measured' })
      .option('reference', { alias: 'r', type: 'string', describe: 'model mode: model whose softmax outputs serve as P(y|x)' })
      .option('dataset', { alias: 'd', type: 'string', describe: 'model mode: registry name (fashion-mnist, fashion-mnist:test) or a dataset path' })
      .option('split', { type: 'string', choices: ['train', 'test'], describe: 'model mode: split (default test)' })
      .option('limit', { type: 'number', describe: 'model mode: at most this many items in all (stratified, seeded)' })
      .option('per-class', { type: 'number', describe: 'model mode: at most this many items per class (seeded)' })
      .option('seed', { type: 'number', default: 0, describe: 'seed for the synthetic distribution, the initialisation and the item sample' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout (nothing else there): {command, version, result, warnings}' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress and no table' })
      .option('out', { alias: 'o', type: 'string', describe: 'write result.json to this folder' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing --out folder' })
      .example('$0 theory lowrank', 'synthetic local regime: |X| = 40, K = 8, bottleneck k = 2, angles for ε = 0.05 … 0.8')
      .example('$0 theory lowrank --symbols 24 --classes 6 --k 2 --epsilon 0.02,0.1,0.5,0.9 --json', 'angles against dependence ε, as JSON')
      .example('$0 theory lowrank --model fmnist-mlp --reference fmnist-cnn --dataset fashion-mnist --per-class 100', "the MLP's head against B̃ of the CNN's posteriors on 1000 test images")
      .epilog('Reconstructed from the abstract of Shisher, Ornee, Sun (arXiv 2202.04632) and the Huang–Xu–Zheng–Wornell lineage; see docs/theory.md#theory-lowrank.') as unknown as Argv<LowrankArgs>,
  handler: async (a) => {
    const modelMode = a.model !== undefined || a.reference !== undefined || a.dataset !== undefined;
    // The output folder is claimed first: an existing one is refused before the model pass.
    const inputs = [a.model, a.reference, a.dataset].filter((p): p is string => p !== undefined);
    const { result, table } = await withRunFolder(a.out, { force: a.force, inputs }, async (dir) => {
      let result: SyntheticLowrankResult | ModelLowrankResult;
      let table: string;
      if (modelMode) {
        const missing = (['model', 'reference', 'dataset'] as const).filter((k) => a[k] === undefined);
        if (missing.length > 0) throw new UsageError(`model mode needs --model, --reference and --dataset; missing ${missing.map((m) => '--' + m).join(', ')}`, 'e.g. --model models/fmnist-mlp --reference models/fmnist-cnn --dataset fashion-mnist');
        const bar = makeProgress('theory lowrank', { unit: 'items', quiet: a.json || a.quiet });
        const res = await lowrankModel({
          model: a.model!,
          reference: a.reference!,
          dataset: a.dataset!,
          ...(a.split ? { split: a.split as 'train' | 'test' } : {}),
          ...(a.limit !== undefined ? { limit: a.limit } : {}),
          ...(a['per-class'] !== undefined ? { perClass: a['per-class'] } : {}),
          seed: a.seed,
          onProgress: (done: number, total: number) => bar.update(done, total),
        }).finally(() => bar.stop());
        if (a.k !== undefined) {
          if (!Number.isInteger(a.k) || a.k < 1 || a.k > res.K - 1) throw new UsageError(`--k must be an integer in 1..${res.K - 1} (got ${a.k})`);
          res.rows = res.rows.filter((r) => r.k === a.k);
        }
        result = { mode: 'model', ...res } as ModelLowrankResult;
        table = modelTable(res);
      } else {
        const epsilons = parseEpsilons(a.epsilon);
        for (const [flag, v] of [['symbols', a.symbols], ['classes', a.classes]] as const) {
          if (!Number.isInteger(v) || v < 2) throw new UsageError(`--${flag} must be an integer ≥ 2 (got ${v})`);
        }
        const res = lowrankSynthetic({ symbols: a.symbols, classes: a.classes, k: a.k ?? 2, epsilons, seed: a.seed, decay: a.decay, ...(a.rank !== undefined ? { rank: a.rank } : {}) });
        result = { mode: 'synthetic', ...res } as SyntheticLowrankResult;
        table = syntheticTable(res);
      }
      if (dir) await writeFile(path.join(dir, 'result.json'), resultJson(result) + '\n');
      return { result, table };
    });
    if (a.json) printJson('theory lowrank', result, warningsOf(result));
    else if (!a.quiet) process.stdout.write(table + '\n' + (a.out ? `files: ${a.out}/result.json\n` : ''));
  },
};
