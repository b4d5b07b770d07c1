/**
 * `layerprobe theory …`: the random-layer theory of docs/theory.md#theory-phase — union-of-subspaces data
 * (`uos`), phase-transition maps of separability after a random layer (`phase`), and per-class
 * energy ranks of a real dataset (`rank`). Argument handling and printing only; the work is in
 * src/theory.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeProgress } from './progress.js';
import type { Argv, CommandModule } from 'yargs';
import { npyHeader } from '../data/npy.js';
import { UsageError } from '../errors.js';
import { defaultRunDir, withRunFolder } from '../report/run-folder.js';
import { ACTIVATIONS, parseActivation, type Activation } from '../features/random-layer.js';
import { PHASE_AXES, phaseTransition, type PhaseAxis, type PhaseOptions, type PhaseResult } from '../metrics/baseline/phase.js';
import { phaseCsv, phaseHtml } from '../theory/phase-report.js';
import { datasetClassRanks, type DatasetRankResult } from '../theory/rank.js';
import { unionOfSubspaces, type UnionOfSubspaces } from '../metrics/baseline/subspaces.js';
import { formatTable } from '../report/table.js';
import { printJson, resultJson, warningsOf } from './result-json.js';
import { clusteringCommand } from './theory-clustering.js';
import { deepLinearCommand } from './theory-deep-linear.js';
import { lowrankCommand } from './theory-lowrank.js';

// ---------------------------------------------------------------------------------------------
// Shared helpers


/**
 * A list of numbers: `2,4,8`, `lo:hi` (every integer), or `lo:hi:step` (lo, lo+step, … ≤ hi).
 * With `integer`, every value must be an integer.
 */
export function parseGrid(flag: string, text: string | number, opts: { integer?: boolean; min?: number } = {}): number[] {
  const s = String(text).trim();
  let out: number[];
  const range = /^(-?[\d.]+)\s*:\s*(-?[\d.]+)(?:\s*:\s*([\d.]+))?$/.exec(s);
  if (range) {
    const lo = Number(range[1]);
    const hi = Number(range[2]);
    const step = range[3] !== undefined ? Number(range[3]) : 1;
    if (!(step > 0) || !Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) throw new UsageError(`--${flag}: bad range \`${s}\` (write lo:hi or lo:hi:step with lo ≤ hi, step > 0)`);
    out = [];
    for (let i = 0; ; i++) {
      const v = lo + i * step;
      if (v > hi + 1e-9 * Math.max(1, Math.abs(hi))) break;
      out.push(Number(v.toPrecision(12)));
    }
  } else {
    out = s.split(',').map((p) => p.trim()).filter(Boolean).map(Number);
    if (out.length === 0 || out.some((v) => !Number.isFinite(v))) throw new UsageError(`--${flag} expects numbers: a list (2,4,8), lo:hi or lo:hi:step (got \`${s}\`)`);
  }
  if (opts.integer && out.some((v) => !Number.isInteger(v))) throw new UsageError(`--${flag} takes integers (got \`${s}\`)`);
  if (opts.min !== undefined && out.some((v) => v < opts.min!)) throw new UsageError(`--${flag} values must be ≥ ${opts.min} (got \`${s}\`)`);
  return [...new Set(out)].sort((a, b) => a - b);
}

function single(flag: string, text: string | number | undefined, fallback: number, integer = true): number {
  if (text === undefined) return fallback;
  const v = parseGrid(flag, text, { integer });
  if (v.length !== 1) throw new UsageError(`--${flag} takes one value here (it is not the varied property); got \`${text}\``);
  return v[0]!;
}


interface CommonArgs {
  json: boolean;
  quiet: boolean;
  seed: number;
}

function withCommon<T>(y: Argv<T>): Argv<T & CommonArgs> {
  return y
    .option('seed', { type: 'number', default: 0, describe: 'seed for every random draw (subspaces, samples, layers)' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout (nothing else there): {command, version, result, warnings}' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress and no table' }) as unknown as Argv<T & CommonArgs>;
}

const fmt = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : Number.isInteger(v) ? String(v) : v.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// theory uos

interface UosArgs extends CommonArgs {
  'ambient-dim': number;
  d?: number;
  'intrinsic-dim': number;
  r?: number;
  K: number;
  n: number;
  angle?: number;
  noise: number;
  out?: string;
  force: boolean;
}

/** Largest distance of a noise-free sample from its class subspace: ‖x − U Uᵀx‖ (≈ 0). */
export function maxSubspaceResidual(u: UnionOfSubspaces): number {
  let worst = 0;
  for (let i = 0; i < u.n; i++) {
    const k = u.labels[i]!;
    const U = u.bases[k]!;
    const r = u.r[k]!;
    const x = u.X.subarray(i * u.d, (i + 1) * u.d);
    const c = new Float64Array(r);
    for (let j = 0; j < u.d; j++) for (let p = 0; p < r; p++) c[p]! += U[j * r + p]! * x[j]!;
    let res = 0;
    for (let j = 0; j < u.d; j++) {
      let v = x[j]!;
      for (let p = 0; p < r; p++) v -= U[j * r + p]! * c[p]!;
      res += v * v;
    }
    worst = Math.max(worst, Math.sqrt(res));
  }
  return worst;
}

function npy(shape: number[], data: Float32Array | Int32Array | Float64Array): Buffer {
  const dtype = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'float64';
  return Buffer.concat([npyHeader(shape, dtype), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

const uosCommand: CommandModule<object, UosArgs> = {
  command: 'uos',
  describe: 'union-of-subspaces data: K classes on random r-dim subspaces of R^d (or a pair at angle θ); principal angles',
  builder: (y: Argv) =>
    withCommon(
      y
        .option('ambient-dim', { type: 'number', default: 40, describe: 'ambient dimension d (was --d)' })
        // The old spelling, for a command mounted without the main CLI's rewrite (see renameDeprecatedFlags).
        .option('d', { type: 'number', hidden: true })
        .option('intrinsic-dim', { type: 'number', default: 4, describe: 'subspace (intrinsic) dimension r (was --r)' })
        .option('r', { type: 'number', hidden: true })
        .option('K', { type: 'number', default: 2, describe: 'number of classes' })
        .option('n', { type: 'number', default: 100, describe: 'samples per class (x = U_k c, c ~ N(0, I_r))' })
        .option('angle', { type: 'number', describe: 'K=2: put every principal angle at this many degrees instead of drawing at random' })
        .option('noise', { type: 'number', default: 0, describe: 'σ of isotropic Gaussian noise added to each sample' })
        .option('out', { alias: 'o', type: 'string', describe: 'write X.npy (float32), labels.npy, bases.npy (float64, K×d×r) and uos.json to this folder' })
        .option('force', { type: 'boolean', default: false, describe: 'replace an existing --out folder' }),
    )
      .example('$0 theory uos --ambient-dim 40 --intrinsic-dim 4 --K 3', 'principal angles between three random 4-dim subspaces of R^40')
      .example('$0 theory uos --ambient-dim 20 --intrinsic-dim 3 --angle 30 --json', 'a pair whose principal angles are all 30°')
      .example('$0 theory uos --ambient-dim 40 --intrinsic-dim 4 --n 500 --noise 0.05 --out uos-data', 'samples as .npy files for numpy') as unknown as Argv<UosArgs>,
  handler: async (a) => {
    const r = a.r ?? a['intrinsic-dim'];
    const u = unionOfSubspaces({ d: a.d ?? a['ambient-dim'], r, K: a.K, n: a.n, seed: a.seed, noise: a.noise, ...(a.angle !== undefined ? { angle: (a.angle * Math.PI) / 180 } : {}) });
    const pairs = u.angles.map((p) => ({ k: p.k, l: p.l, anglesDeg: Array.from(p.angles, (t) => (t * 180) / Math.PI) }));
    const summary = {
      definition: 'union of subspaces (docs/theory.md#theory-uos): x = U_k c, c ~ N(0, I_r), U_k orthonormal (QR of a Gaussian, or the θ-pair); principal angles cos θ_j = σ_j(U_kᵀU_l)',
      d: u.d,
      r,
      K: u.K,
      samplesPerClass: a.n,
      noise: a.noise,
      angleDeg: a.angle ?? null,
      seed: a.seed,
      pairs,
      maxResidual: a.noise > 0 ? null : maxSubspaceResidual(u),
    };
    await withRunFolder(a.out, { force: a.force }, async (dir) => {
      if (!dir) return;
      await writeFile(path.join(dir, 'X.npy'), npy([u.n, u.d], Float32Array.from(u.X)));
      await writeFile(path.join(dir, 'labels.npy'), npy([u.n], u.labels));
      const B = new Float64Array(u.K * u.d * r);
      u.bases.forEach((U, k) => B.set(U, k * u.d * r));
      await writeFile(path.join(dir, 'bases.npy'), npy([u.K, u.d, r], B));
      await writeFile(path.join(dir, 'uos.json'), resultJson(summary) + '\n');
    });
    if (a.json) {
      printJson('theory uos', summary);
      return;
    }
    if (a.quiet) return;
    const rows = pairs.map((p) => {
      const v = p.anglesDeg;
      return [`${p.k}–${p.l}`, fmt(Math.min(...v), 3), fmt(v.reduce((s, x) => s + x, 0) / v.length, 3), fmt(Math.max(...v), 3), v.map((x) => x.toFixed(2)).join(' ')];
    });
    process.stdout.write(
      `${u.K} classes, r = ${r} in R^${u.d}, ${a.n} samples each${a.noise > 0 ? `, noise σ = ${a.noise}` : ''}\n` +
        formatTable(['pair', 'min θ°', 'mean θ°', 'max θ°', 'principal angles (degrees)'], rows, ['l', 'r', 'r', 'r', 'l']) +
        '\n' +
        (summary.maxResidual !== null ? `largest distance of a sample from its subspace: ${summary.maxResidual.toExponential(2)}\n` : '') +
        (a.out ? `files: ${a.out}\n` : ''),
    );
  },
};

// ---------------------------------------------------------------------------------------------
// theory phase

interface PhaseArgs extends CommonArgs {
  vary: string;
  activation: string;
  trials: number;
  'ambient-dim'?: string;
  /** --ambient-dim, under the name phasePlan takes. */
  d?: string;
  'intrinsic-dim'?: string;
  /** --intrinsic-dim, under the name phasePlan takes (and the old spelling --r). */
  r?: string;
  D?: string;
  angle?: string;
  K: number;
  test?: string;
  'samples-per-class'?: number;
  noise: number;
  exhaustive: boolean;
  out?: string;
  force: boolean;
}

/** `width,intrinsic` / `intrinsic` / `r` … → the varied data axis. */
export function parseVary(text: string): PhaseAxis {
  const alias: Record<string, PhaseAxis> = { intrinsic: 'intrinsic', r: 'intrinsic', ambient: 'ambient', d: 'ambient', angle: 'angle', theta: 'angle' };
  const parts = text.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s && s !== 'width' && s !== 'd-width');
  if (parts.length !== 1 || !alias[parts[0]!]) {
    throw new UsageError(`--vary \`${text}\`: name the width and one data property`, `e.g. --vary width,intrinsic (or ambient, angle)`);
  }
  return alias[parts[0]!]!;
}

/** About `count` evenly spaced integers from lo to hi, both included. */
export function spacedWidths(lo: number, hi: number, count = 30): number[] {
  const step = Math.max(1, Math.ceil((hi - lo) / (count - 1)));
  const out: number[] = [];
  for (let w = lo; w < hi; w += step) out.push(w);
  out.push(hi);
  return out;
}

/** The grid a `theory phase` invocation asks for: PhaseOptions less the solver settings. */
export type PhasePlan = Pick<PhaseOptions, 'vary' | 'values' | 'widths' | 'r' | 'd' | 'angleDeg'>;

/** Resolves the flags into the varied values, fixed properties and widths (with defaults). */
export function phasePlan(a: Pick<PhaseArgs, 'vary' | 'd' | 'r' | 'D' | 'angle'>, activation: Activation, K = 2): PhasePlan {
  const vary = parseVary(a.vary);
  let values: number[];
  let r: number | undefined;
  let d: number | undefined;
  let angleDeg: number | undefined;
  if (vary === 'intrinsic') {
    values = parseGrid('intrinsic-dim', a.r ?? '2,3,4,6,8,10,12', { integer: true, min: 1 });
    d = single('ambient-dim', a.d, 40);
  } else if (vary === 'ambient') {
    values = parseGrid('ambient-dim', a.d ?? '12,40,100', { integer: true, min: 1 });
    r = single('intrinsic-dim', a.r, 6);
  } else {
    values = parseGrid('angle', a.angle ?? '5,10,20,45,90', { min: 0 });
    if (values.some((v) => v > 90)) throw new UsageError('--angle values are degrees in [0, 90]');
    r = single('intrinsic-dim', a.r, 6);
    d = single('ambient-dim', a.d, 40);
  }
  if (vary !== 'angle' && a.angle !== undefined) angleDeg = single('angle', a.angle, 0, false);
  const rMax = vary === 'intrinsic' ? Math.max(...values) : r!;
  // Two classes separate surely at r(r+1) (quadratic); one-vs-all for K classes involves K blocks
  // of r(r+1)/2 dimensions each; ReLU-like layers need about twice the width.
  const top = (Math.max(2, K) * rMax * (rMax + 1) * (activation === 'quadratic' ? 1 : 2)) / 2;
  const widths = a.D !== undefined ? parseGrid('D', a.D, { integer: true, min: 1 }) : spacedWidths(1, top);
  return { vary, values, widths, ...(r !== undefined ? { r } : {}), ...(d !== undefined ? { d } : {}), ...(angleDeg !== undefined ? { angleDeg } : {}) };
}

export function phaseTable(res: PhaseResult): string {
  const rows = res.columns.map((c) => [
    fmt(c.value, 2),
    String(c.r),
    String(c.d),
    c.angleDeg === null ? '—' : fmt(c.angleDeg, 2),
    c.dStar === null ? (c.dStarNote?.includes('already') ? `≤ ${res.widths[0]}` : `> ${res.widths[res.widths.length - 1]}`) : c.dStar.toFixed(1),
    String(c.featureDim),
    c.sureWidth === null ? '—' : String(c.sureWidth),
    c.dStar === null ? '—' : (c.dStar / c.featureDim).toFixed(2),
    String(c.undecided),
  ]);
  const lines = [
    `${res.activation} layer, ${res.test} test, K = ${res.K}, ${res.trials} trials per column, widths ${res.widths[0]}…${res.widths[res.widths.length - 1]}` +
      (res.samplesPerClass !== null ? `, ${res.samplesPerClass} samples per class` : ''),
    formatTable(['value', 'r', 'd', 'θ°', 'D*', 'r(r+1)/2', 'r(r+1)', 'D*/(r(r+1)/2)', 'undecided'], rows, ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
  ];
  if (res.fit) lines.push(`slope of ln D* on ln r: ${res.fit.slope.toFixed(3)} (R² ${res.fit.r2.toFixed(4)}, ${res.fit.points} points)`);
  if (res.dStarSpread !== null) lines.push(`max/min D* across columns: ${res.dStarSpread.toFixed(3)}`);
  lines.push(`${(res.elapsedMs / 1000).toFixed(1)} s`);
  return lines.join('\n');
}

const phaseCommand: CommandModule<object, PhaseArgs> = {
  command: 'phase',
  describe: 'phase-transition map of P(separable) after a random layer: width D against r, d or θ; D* and its log-log slope',
  builder: (y: Argv) =>
    withCommon(
      y
        .option('vary', { type: 'string', default: 'width,intrinsic', describe: `width,<${PHASE_AXES.join('|')}>: the data property across columns (widths are the rows)` })
        .option('activation', { alias: 'a', type: 'string', default: 'quadratic', describe: `${ACTIVATIONS.join(', ')}` })
        .option('trials', { alias: 't', type: 'number', default: 10, describe: 'random draws (subspaces + layer) per column' })
        .option('intrinsic-dim', { type: 'string', describe: 'intrinsic (subspace) dimension r: a list/range when varied (default 2,3,4,6,8,10,12), else one value (default 6) (was --r)' })
        .option('r', { type: 'string', hidden: true })
        .option('ambient-dim', { type: 'string', describe: 'ambient dimension d: a list/range when varied (default 12,40,100), else one value (default 40) (was --d)' })
        .option('d', { type: 'string', hidden: true })
        .option('angle', { type: 'string', describe: 'principal angle in degrees: a list when varied (default 5,10,20,45,90), else one value (default: random subspaces)' })
        .option('D', { type: 'string', describe: 'widths shown, e.g. 1:160, 4:160:4 or 10,20,40 (default ~30 values up to r(r+1), ×K/2 for K > 2, ×2 for non-quadratic); thresholds are searched at unit resolution' })
        .option('K', { type: 'number', default: 2, describe: 'classes (K > 2: every class against the union of the others)' })
        .option('test', { type: 'string', choices: ['exact', 'sample'], describe: 'exact (quadratic only; default there) or sample (LP on sampled features; default otherwise)' })
        .option('samples-per-class', { type: 'number', describe: "sample test: points per class (default 4× Cover's capacity 2(D+1) in all)" })
        .option('noise', { type: 'number', default: 0, describe: 'sample test: σ of Gaussian noise on the samples' })
        .option('exhaustive', { type: 'boolean', default: false, describe: 'test every cell directly instead of bisecting each trial (slower; for checking)' })
        .option('out', { alias: 'o', type: 'string', describe: 'folder for phase.json, phase.csv, phase.html (default runs/<time>-theory-phase)' })
        .option('force', { type: 'boolean', default: false, describe: 'replace an existing --out folder' }),
    )
      .example('$0 theory phase --vary width,intrinsic --intrinsic-dim 2:12 --ambient-dim 40 --trials 10', 'D* against r for the quadratic layer (exact test) and the log-log slope')
      .example('$0 theory phase --vary width,ambient --ambient-dim 12,40,100,300 --intrinsic-dim 6', 'D* does not move with the ambient dimension')
      .example('$0 theory phase --vary width,angle --angle 5,15,45,90 --intrinsic-dim 6 --ambient-dim 40', 'smaller principal angles need wider layers')
      .example('$0 theory phase --activation relu --intrinsic-dim 2:6 --ambient-dim 20 --D 1:90 --json', 'ReLU by the sample LP test, JSON on stdout') as unknown as Argv<PhaseArgs>,
  handler: async (a) => {
    const activation = parseActivation(a.activation);
    const plan = phasePlan({ ...a, d: a.d ?? a['ambient-dim'], r: a.r ?? a['intrinsic-dim'] }, activation, a.K);
    const quiet = a.quiet || a.json;
    const out = a.out ?? defaultRunDir('theory-phase');
    // The output folder is claimed first: an existing one is refused before the trials run.
    const res = await withRunFolder(out, { force: a.force }, async (dir) => {
      const bar = makeProgress('theory phase', { unit: 'trials', quiet });
      const r = await phaseTransition({
        ...plan,
        K: a.K,
        activation,
        ...(a.test ? { test: a.test as 'exact' | 'sample' } : {}),
        trials: a.trials,
        ...(a['samples-per-class'] !== undefined ? { samplesPerClass: a['samples-per-class'] } : {}),
        noise: a.noise,
        seed: a.seed,
        exhaustive: a.exhaustive,
        onProgress: (done, total) => bar.update(done, total),
      }).finally(() => bar.stop());
      await writeFile(path.join(dir!, 'phase.json'), resultJson(r) + '\n');
      await writeFile(path.join(dir!, 'phase.csv'), phaseCsv(r));
      await writeFile(path.join(dir!, 'phase.html'), await phaseHtml(r));
      return r;
    });
    if (a.json) printJson('theory phase', res, warningsOf(res));
    else if (!a.quiet) process.stdout.write(phaseTable(res) + `\nfiles: ${out}/phase.{json,csv,html}\n`);
  },
};

// ---------------------------------------------------------------------------------------------
// theory rank

interface RankArgs extends CommonArgs {
  dataset: string;
  split?: string;
  'per-class'?: number;
  energy: number;
}

export function rankTable(res: DatasetRankResult): string {
  const rows = res.classes.map((c) => [String(c.k), c.name ?? '', String(c.n), String(c.rank), String(c.rankUncentred), (100 * c.energyCaptured).toFixed(2) + '%']);
  return (
    `${res.dataset}${res.split ? ` (${res.split})` : ''}: per-class rank holding ${(100 * res.energy).toFixed(0)}% of the Frobenius energy Σσ² (d = ${res.dimension})\n` +
    formatTable(['class', 'name', 'n', 'rank (centred)', 'rank (raw)', 'energy in rank'], rows, ['r', 'l', 'r', 'r', 'r', 'r'])
  );
}

const rankCommand: CommandModule<object, RankArgs> = {
  command: 'rank',
  describe: 'per-class 95%-energy rank of a real dataset (singular values holding 95% of Σσ²)',
  builder: (y: Argv) =>
    withCommon(
      y
        .option('dataset', { type: 'string', demandOption: true, describe: 'registry name (fashion-mnist, mnist) or a dataset path, as for audit' })
        .option('split', { type: 'string', choices: ['train', 'test'], describe: 'split (default test)' })
        .option('per-class', { type: 'number', describe: 'seeded sample of at most this many items per class (default: all)' })
        .option('energy', { type: 'number', default: 0.95, describe: 'share of Σσ² the rank must hold' }),
    )
      .example('$0 theory rank --dataset fashion-mnist', 'ranks of the ten Fashion-MNIST classes (test split)')
      .example('$0 theory rank --dataset fashion-mnist --split train --per-class 2000 --json', 'from 2000 training images per class, as JSON') as unknown as Argv<RankArgs>,
  handler: async (a) => {
    if (!(a.energy > 0 && a.energy <= 1)) throw new UsageError(`--energy must be in (0, 1], got ${a.energy}`);
    const quiet = a.quiet || a.json;
    const bar = makeProgress('theory rank', { quiet });
    const res = await datasetClassRanks({
      dataset: a.dataset,
      ...(a.split ? { split: a.split as 'train' | 'test' } : {}),
      ...(a['per-class'] !== undefined ? { perClass: a['per-class'] } : {}),
      seed: a.seed,
      energy: a.energy,
      onProgress: (done, total) => bar.update(done, total),
    }).finally(() => bar.stop());
    if (a.json) printJson('theory rank', res, warningsOf(res));
    else if (!a.quiet) process.stdout.write(rankTable(res) + '\n');
  },
};

// ---------------------------------------------------------------------------------------------

export const theoryCommand: CommandModule = {
  command: 'theory <command>',
  describe: 'theory checks: deep-linear compression, random layers and separability, weight clustering, low-rank heads (docs/theory.md)',
  builder: (y: Argv) =>
    y
      .command(uosCommand)
      .command(phaseCommand)
      .command(rankCommand)
      .command(deepLinearCommand)
      .command(clusteringCommand)
      .command(lowrankCommand)
      .demandCommand(1, 'name a theory command: uos, phase, rank, deep-linear, clustering or lowrank')
      .example('$0 theory phase --intrinsic-dim 2:12 --trials 10', 'reproduce D*(r) ≈ 1.1–1.4·r(r+1)/2 for the quadratic layer')
      .example('$0 theory rank --dataset fashion-mnist', 'per-class ranks of real data'),
  handler: () => {},
};
