/**
 * Sweeps: `layerprobe train --arch mlp --sweep activation=relu,tanh width=64,256 depth=2,4` trains
 * every cell of the grid (each a seeded, monitored training run, in the same process on the same
 * decoded dataset) and writes a sweep folder: one model folder per cell under `cells/`, and
 * sweep.json, sweep.csv (one row per cell and hidden layer) and sweep.html comparing how each
 * axis changes the final hidden-layer separability.
 *
 * Every cell is checked (keys, values, architecture constraints such as heads dividing the width)
 * before the first one trains. A cell whose training fails at run time (diverging loss) is
 * recorded as failed and the sweep goes on; the sweep fails only when every cell did.
 */
import path from 'node:path';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { createRunFolder, writeFileAtomic } from '../report/run-folder.js';
import { ACTIVATIONS, ARCHS, ARCH_DEFAULTS, checkArchOptions, isActivation, isArch, type Arch, type ArchOptions } from './arch.js';
import { loadTrainingData } from './data.js';
import { probePerClass } from './monitor-options.js';
import { renderSweepHtml } from '../report/monitor-html.js';
import {
  SWEEP_FILES,
  SWEEP_FORMAT,
  SWEEP_VERSION,
  type LayerSynchronicity,
  type SweepAxisRecord,
  type SweepCell,
  type SweepRecord,
  type SweepValue,
} from '../report/monitor-schema.js';
import { RECIPE_DEFAULTS, monitorRequest, train, type TrainOptions, type TrainResult } from './train.js';
import { csvLine } from '../report/csv.js';

/** Keys a sweep may vary, per architecture: the architecture's own options, and the run's lr and seed. */
export const SWEEP_KEYS: Record<Arch, readonly SweepKey[]> = {
  mlp: ['activation', 'width', 'depth', 'lr', 'seed'],
  cnn: ['activation', 'width', 'depth', 'lr', 'seed'],
  vit: ['width', 'depth', 'heads', 'patch', 'lr', 'seed'],
};
export type SweepKey = 'activation' | 'width' | 'depth' | 'heads' | 'patch' | 'lr' | 'seed';
export interface SweepAxis extends SweepAxisRecord {
  key: SweepKey;
}

/** More cells than this is almost certainly a typo on a CPU. */
export const MAX_SWEEP_CELLS = 256;

function parseValue(arch: Arch, key: SweepKey, raw: string): SweepValue {
  if (key === 'activation') {
    if (!isActivation(raw)) throw new UsageError(`--sweep activation=${raw}: unknown activation (valid: ${ACTIVATIONS.join(', ')})`);
    return raw;
  }
  const v = Number(raw);
  if (key === 'lr') {
    if (raw === '' || !Number.isFinite(v) || v <= 0) throw new UsageError(`--sweep lr=${raw}: expected positive numbers, e.g. lr=0.001,0.003`);
    return v;
  }
  if (key === 'seed') {
    if (!/^-?[0-9]+$/.test(raw) || !Number.isSafeInteger(v)) throw new UsageError(`--sweep seed=${raw}: expected integers, e.g. seed=0,1,2`);
    return v;
  }
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(v) || v < 1) {
    throw new UsageError(`--sweep ${key}=${raw}: expected positive integers, e.g. ${key}=${key === 'depth' ? '2,4,8' : key === 'heads' ? '2,4' : key === 'patch' ? '4,7' : '64,256'} (${arch})`);
  }
  return v;
}

/**
 * Parses `--sweep` items (`key=v1,v2,…`; several items or one space-separated string). Only the
 * keys the architecture accepts; values checked by type; a key or a value given twice is an error.
 */
export function parseSweep(items: readonly string[], arch: string): SweepAxis[] {
  if (!isArch(arch)) throw new UsageError(`unknown architecture \`${arch}\` (use one of ${ARCHS.join(', ')})`);
  const valid = SWEEP_KEYS[arch];
  const axes: SweepAxis[] = [];
  const words = items.flatMap((s) => s.split(/\s+/)).filter(Boolean);
  if (words.length === 0) throw new UsageError(`--sweep needs at least one key=v1,v2,… (keys for ${arch}: ${valid.join(', ')})`);
  for (const w of words) {
    const m = /^([A-Za-z-]+)=(.+)$/.exec(w);
    if (!m) throw new UsageError(`--sweep: cannot read \`${w}\` (expected key=v1,v2,…, keys for ${arch}: ${valid.join(', ')})`);
    const key = m[1]!.toLowerCase();
    if (!(valid as readonly string[]).includes(key)) {
      throw new UsageError(`--sweep: \`${m[1]}\` is not a key ${arch} accepts (valid: ${valid.join(', ')})`);
    }
    const k = key as SweepKey;
    if (axes.some((a) => a.key === k)) throw new UsageError(`--sweep: \`${k}\` given twice; list its values once, comma-separated`);
    const raws = m[2]!.split(',');
    if (raws.some((r) => r === '')) throw new UsageError(`--sweep ${w}: empty value`);
    const values = raws.map((r) => parseValue(arch, k, r));
    const dup = values.find((v, i) => values.indexOf(v) !== i);
    if (dup !== undefined) throw new UsageError(`--sweep ${k}: value ${dup} listed twice`);
    axes.push({ key: k, values });
  }
  const cells = axes.reduce((n, a) => n * a.values.length, 1);
  if (cells > MAX_SWEEP_CELLS) throw new UsageError(`--sweep: ${cells} cells is more than ${MAX_SWEEP_CELLS}; sweep fewer values at a time`);
  return axes;
}

/** Every combination, the first axis varying slowest. */
export function sweepCells(axes: readonly SweepAxis[]): Record<string, SweepValue>[] {
  let cells: Record<string, SweepValue>[] = [{}];
  for (const a of axes) cells = cells.flatMap((c) => a.values.map((v) => ({ ...c, [a.key]: v })));
  return cells;
}

/** Folder name of a cell: `activation-relu_width-64_depth-2`. */
export function cellName(settings: Record<string, SweepValue>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k}-${String(v)}`)
    .join('_')
    .replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** sweep.json, with the architecture, axis keys and options at their train types. */
export interface SweepResult extends SweepRecord {
  arch: Arch;
  axes: SweepAxis[];
  base: SweepRecord['base'] & { options: Partial<ArchOptions> };
}

export interface SweepOptions extends Omit<TrainOptions, 'data' | 'name'> {
  /** `--sweep` items, or parsed axes. */
  sweep: readonly string[] | readonly SweepAxis[];
  /** Called when a cell starts: (1-based index, count, name). */
  onCell?: (index: number, count: number, name: string) => void;
}

function axesOf(opts: SweepOptions): SweepAxis[] {
  const s = opts.sweep;
  if (s.length > 0 && typeof s[0] !== 'string') return [...(s as readonly SweepAxis[])];
  return parseSweep(s as readonly string[], opts.arch);
}

function summariseCell(name: string, settings: Record<string, SweepValue>, r: TrainResult, seconds: number): SweepCell {
  const m = r.monitor!;
  const last = m.checkpoints[m.checkpoints.length - 1];
  const L = m.layers.length;
  const sync = new Map<string, LayerSynchronicity>(m.synchronicity.layers.map((l) => [l.layer, l]));
  const lastId = m.layers[L - 1]!.id;
  return {
    name,
    dir: path.join('cells', name),
    settings,
    status: 'ok',
    trainAccuracy: r.card.metrics.trainAccuracy,
    testAccuracy: r.card.metrics.testAccuracy,
    params: r.card.architecture.params,
    seconds,
    monitorSeconds: m.timing.monitorSeconds,
    layers: (last?.layers ?? []).map((p, i) => ({
      layer: p.layer,
      index: i + 1,
      relativeDepth: (i + 1) / L,
      kappa: p.kappa,
      kappaHeldOut: p.kappaHeldOut,
      compression: p.compression,
      discrimination: p.discrimination,
      probeAccuracy: p.probeAccuracy,
      syncLevels: sync.get(p.layer)?.levels.pearson ?? null,
      syncChanges: sync.get(p.layer)?.changes.pearson ?? null,
      syncChangesDuringTraining: sync.get(p.layer)?.duringTraining.changes.pearson ?? null,
    })),
    bestTrackingLayer: m.synchronicity.best,
    lastLayerCurve: m.checkpoints.map((c) => ({ epochProgress: c.epochProgress, kappa: c.layers.find((l) => l.layer === lastId)?.kappa ?? null, trainAccuracy: c.trainAccuracy })),
  };
}

/** sweep.csv: one row per cell and hidden layer (a failed cell: one row without layer values). */
export function sweepCsv(s: SweepResult): string {
  const keys = s.axes.map((a) => a.key);
  const head = ['cell', ...keys, 'status', 'train_accuracy', 'test_accuracy', 'layer', 'layer_index', 'relative_depth', 'kappa', 'kappa_heldout', 'compression', 'discrimination', 'probe_accuracy', 'sync_levels_pearson', 'sync_changes_pearson', 'sync_changes_during_training_pearson', 'seconds'];
  const lines = [head.join(',')];
  for (const c of s.cells) {
    const common = [c.name, ...keys.map((k) => c.settings[k]!), c.status, c.trainAccuracy, c.testAccuracy];
    const rows = c.layers.length
      ? c.layers.map((l) => [...common, l.layer, l.index, l.relativeDepth, l.kappa, l.kappaHeldOut, l.compression, l.discrimination, l.probeAccuracy, l.syncLevels, l.syncChanges, l.syncChangesDuringTraining, c.seconds])
      : [[...common, null, null, null, null, null, null, null, null, null, null, null, c.seconds]];
    for (const r of rows) lines.push(csvLine(r));
  }
  return lines.join('\n') + '\n';
}

function f3(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(3);
}

/** The table printed at the end of a sweep. */
export function sweepText(s: SweepResult): string {
  const keys = s.axes.map((a) => a.key);
  const head = [...keys, 'train acc', 'test acc', 'κ per layer (in → out)', 'C last', 'D last', 'probe last', 'best sync'];
  const rows = s.cells.map((c) => {
    const last = c.layers[c.layers.length - 1];
    return [
      ...keys.map((k) => String(c.settings[k])),
      c.status === 'ok' ? `${(100 * (c.trainAccuracy ?? NaN)).toFixed(1)}%` : 'failed',
      c.status === 'ok' ? `${(100 * (c.testAccuracy ?? NaN)).toFixed(1)}%` : '',
      c.layers.map((l) => f3(l.kappa)).join(' '),
      f3(last?.compression),
      f3(last?.discrimination),
      last?.probeAccuracy != null ? `${(100 * last.probeAccuracy).toFixed(1)}%` : '—',
      c.bestTrackingLayer ?? '—',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => '  ' + r.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  return [`sweep: ${s.cells.length} cells of ${s.arch}, ${s.base.epochs} epochs each, ${s.seconds.toFixed(0)} s`, line(head), ...rows.map(line)].join('\n') + '\n';
}

/** Trains every cell of the grid into `<out>/cells/<cell>/` and writes the sweep summary files. */
export async function runSweep(opts: SweepOptions): Promise<{ outDir: string; sweep: SweepResult }> {
  const started = performance.now();
  const status = opts.onStatus ?? (() => undefined);
  if (!isArch(opts.arch)) throw new UsageError(`unknown architecture \`${opts.arch}\` (use one of ${ARCHS.join(', ')})`);
  const arch = opts.arch;
  const axes = axesOf(opts);
  for (const a of axes) {
    if (opts[a.key] !== undefined) throw new UsageError(`--${a.key} and --sweep ${a.key}=… both given; use one`);
  }
  // The monitor request and the recipe numbers are checked by train() too; here, before any cell runs.
  const req = monitorRequest({ monitor: opts.monitor ?? '', ...(opts.probeSet !== undefined ? { probeSet: opts.probeSet } : {}) })!;
  const epochs = opts.epochs ?? RECIPE_DEFAULTS[arch].epochs;
  for (const [flag, v] of [['epochs', epochs], ['limit', opts.limit], ['test-limit', opts.testLimit], ['batch-size', opts.batchSize]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new UsageError(`--${flag} must be a positive integer (got ${v})`);
  }
  const settings = sweepCells(axes);
  const base: Partial<ArchOptions> = {
    ...(opts.width !== undefined ? { width: opts.width } : {}),
    ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
    ...(opts.activation !== undefined ? { activation: opts.activation as ArchOptions['activation'] } : {}),
    ...(opts.heads !== undefined ? { heads: opts.heads } : {}),
    ...(opts.patch !== undefined ? { patch: opts.patch } : {}),
  };

  const folder = await createRunFolder(opts.out, { force: opts.force ?? false });
  try {
    status(`loading ${opts.dataset}`);
    const data = await loadTrainingData(opts.dataset);
    probePerClass(req.probeSet, data.train.classes.length);
    for (const s of settings) {
      const o = { ...ARCH_DEFAULTS[arch], ...base, ...(s as Partial<ArchOptions>) };
      try {
        checkArchOptions(arch, o, data.train.itemShape);
      } catch (e) {
        if (e instanceof UsageError) throw new UsageError(`sweep cell ${cellName(s)}: ${e.message}`, e.hint);
        throw e;
      }
    }
    const cells: SweepCell[] = [];
    for (let i = 0; i < settings.length; i++) {
      const s = settings[i]!;
      const name = cellName(s);
      opts.onCell?.(i + 1, settings.length, name);
      status(`cell ${i + 1}/${settings.length}: ${name}`);
      const t0 = performance.now();
      try {
        const r = await train({
          ...opts,
          ...(s as Partial<TrainOptions>),
          out: path.join(folder.workDir, 'cells', name),
          displayOut: path.join(opts.out, 'cells', name),
          force: false,
          name,
          monitor: req.spec,
          probeSet: req.probeSet,
          data,
        });
        cells.push(summariseCell(name, s, r, (performance.now() - t0) / 1000));
      } catch (e) {
        // A bad request fails the sweep; anything that goes wrong inside one cell (a diverging
        // run, a backend error) fails that cell only, so the cells already trained are kept.
        if (e instanceof UsageError) throw e;
        status(`cell ${name} failed: ${errorMessage(e)}`);
        cells.push({
          name, dir: null, settings: s, status: 'failed', error: errorMessage(e), trainAccuracy: null, testAccuracy: null,
          params: null, seconds: (performance.now() - t0) / 1000, monitorSeconds: null, layers: [], bestTrackingLayer: null, lastLayerCurve: [],
        });
      }
    }
    if (cells.every((c) => c.status === 'failed')) throw new RuntimeFailure(`every sweep cell failed (first: ${cells[0]?.error ?? 'no cells'})`);
    const sweep: SweepResult = {
      format: SWEEP_FORMAT,
      version: SWEEP_VERSION,
      createdAt: new Date().toISOString(),
      arch,
      axes,
      base: {
        dataset: data.name,
        epochs,
        limit: opts.limit ?? null,
        testLimit: opts.testLimit ?? null,
        seed: opts.seed ?? 0,
        lr: opts.lr ?? null,
        batchSize: opts.batchSize ?? null,
        options: base,
        monitor: req.spec,
        probeSet: req.probeSet,
      },
      cells,
      seconds: (performance.now() - started) / 1000,
    };
    status('writing sweep.json, sweep.csv, sweep.html');
    await writeFileAtomic(path.join(folder.workDir, SWEEP_FILES.json), JSON.stringify(sweep, null, 2) + '\n');
    await writeFileAtomic(path.join(folder.workDir, SWEEP_FILES.csv), sweepCsv(sweep));
    await writeFileAtomic(path.join(folder.workDir, SWEEP_FILES.html), await renderSweepHtml(sweep, `layerprobe sweep — ${arch} on ${data.name}`));
    const outDir = await folder.commit();
    return { outDir, sweep };
  } catch (e) {
    await folder.abort();
    throw e;
  }
}
