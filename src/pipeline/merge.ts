/**
 * `merge`: the end of a distributed audit (docs/distributed.md). It reads statistics shards,
 * refuses any that do not belong together (version, data, models, options) or that do not cover
 * every image of the audit exactly once, merges their accumulators (exact up to floating-point
 * reassociation; the sample buffers exactly), and then
 *   - writes the same run folder a single-process audit writes, when no second pass is needed or
 *     when it is given the means file and the phase-2 shards; or
 *   - writes the means file (the merged phase-1 state) when some layer needs the second pass of
 *     exact NC1/NC4, for `audit --shard i/n --means FILE` to run phase 2.
 * Everything is checked before anything is written.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeFailure, UsageError } from '../errors.js';
import { shardName } from '../data/shard.js';
import { MeanPassStats, type MeanPassResult } from '../stats/mean-pass.js';
import { canonicalJson, decodeIndices, decodeShard, encodeIndices, encodeShard, sha256Hex, type ShardBody, type ShardModel } from '../stats/shard-file.js';
import { exists, writeFileAtomic } from '../report/run-folder.js';
import { prepareData, type PreparedModel } from './prepare.js';
import { checkAuditOptions, checkClassCounts, classifierOutput, finishModel, newBaselineCaches, openAuditModel, secondPassLayers, writeAuditRun, type AuditOptions, type AuditResult, type ModelPasses } from './audit.js';
import { fingerprint, passesFromJson, passesToJson, runIdentity } from './shard.js';

export interface MergeOptions {
  files: string[];
  out?: string;
  force?: boolean;
  /** Where to write the means file when phase 2 is needed (default: means.lpshard beside the first shard). */
  means?: string;
  command?: string;
  onStage?(message: string): void;
}

export type MergeResult =
  | { kind: 'run'; result: AuditResult; shards: number }
  | { kind: 'means'; file: string; shards: number; layers: { model: string; layers: string[] }[] };

interface Loaded {
  file: string;
  bytes: Buffer;
  body: ShardBody;
}

const SECTIONS: { key: keyof ShardBody['run']; what: string }[] = [
  { key: 'versions', what: 'layerprobe or library versions' },
  { key: 'dataset', what: 'data' },
  { key: 'models', what: 'models (file hash, layers, reductions or preprocessing)' },
  { key: 'options', what: 'audit options' },
];

/** The first section in which two runs differ, as words. */
function difference(a: ShardBody['run'], b: ShardBody['run']): string {
  for (const s of SECTIONS) if (canonicalJson(a[s.key]) !== canonicalJson(b[s.key])) return s.what;
  return 'runs';
}

function sameRun(files: Loaded[]): void {
  const ref = files[0]!;
  for (const f of files.slice(1)) {
    if (f.body.fingerprint !== ref.body.fingerprint || fingerprint(f.body.run) !== f.body.fingerprint) {
      throw new UsageError(`${f.file} and ${ref.file} are shards of different audits: they differ in their ${difference(f.body.run, ref.body.run)}`, 'merge only the shards one audit command line wrote');
    }
  }
}

/** Every index of the audit's selection exactly once, shard i/n for every i. */
function checkCoverage(shards: Loaded[]): void {
  const counts = [...new Set(shards.map((s) => s.body.shard!.count))];
  if (counts.length > 1) throw new UsageError(`the shards come from splits into ${counts.join(' and ')} tasks; merge the shards of one split`);
  const n = counts[0]!;
  const byIndex = new Map<number, string[]>();
  for (const s of shards) byIndex.set(s.body.shard!.index, [...(byIndex.get(s.body.shard!.index) ?? []), s.file]);
  const dup = [...byIndex].filter(([, f]) => f.length > 1);
  if (dup.length) throw new UsageError(`duplicated shard${dup.length > 1 ? 's' : ''}: ${dup.map(([i, f]) => `${shardName({ index: i, count: n })} given ${f.length} times (${f.join(', ')})`).join('; ')}`);
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length) throw new UsageError(`missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => shardName({ index: i, count: n })).join(', ')} (${shards.length} of ${n} given)`, 'rerun the tasks that failed, or pass every shard file');
  const seen = new Map<number, string>();
  const all: number[] = [];
  for (const s of shards) {
    for (const i of decodeIndices(s.body.indices, s.file)) {
      const other = seen.get(i);
      if (other !== undefined) throw new UsageError(`image ${i} is in both ${other} and ${s.file}`);
      seen.set(i, s.file);
      all.push(i);
    }
  }
  const union = Int32Array.from(all).sort();
  const ds = shards[0]!.body.run.dataset as { selectedItems: number; selectionSha256: string };
  if (union.length !== ds.selectedItems || sha256Hex(encodeIndices(union)) !== ds.selectionSha256) {
    throw new RuntimeFailure(`the shards cover ${union.length} images, not the ${ds.selectedItems} images of the audit's selection`, 'the shard files were altered or written by a different layerprobe');
  }
}

async function load(files: string[]): Promise<Loaded[]> {
  if (files.length === 0) throw new UsageError('merge needs shard files', 'e.g. layerprobe merge shards/*.lpshard --out runs/merged');
  const seen = new Set<string>();
  const out: Loaded[] = [];
  for (const file of files) {
    const abs = path.resolve(file);
    if (seen.has(abs)) throw new UsageError(`${file} is given twice`);
    seen.add(abs);
    if (!(await exists(file))) throw new UsageError(`shard ${file} does not exist`);
    const bytes = await readFile(file);
    out.push({ file, bytes, body: decodeShard(bytes, file) });
  }
  return out;
}

/** Merge of the model passes of several files (ascending shard order, so the result does not depend on the order given). */
async function mergePasses(files: Loaded[], m: number): Promise<ModelPasses> {
  const [first, ...rest] = files.map((f) => passesFromJson(f.body.models[m]!, f.file));
  const acc = first!;
  for (const p of rest) {
    for (const [id, s] of acc.stats) await s.merge(p.stats.get(id)!);
    for (const [id, b] of acc.buffers) b.merge(p.buffers.get(id)!);
    if (acc.inputBuffer && p.inputBuffer) acc.inputBuffer.merge(p.inputBuffer);
    if (acc.probes && p.probes) for (const [id, b] of acc.probes) b.merge(p.probes.get(id)!);
    acc.correct += p.correct;
    acc.seen += p.seen;
    // Confusion counts add up like the accuracy counts; a shard without them leaves none.
    acc.confusion = acc.confusion && p.confusion ? acc.confusion.map((row, i) => row.map((v, j) => v + p.confusion![i]![j]!)) : null;
    for (const k of Object.keys(acc.timings) as (keyof ModelPasses['timings'])[]) acc.timings[k] += p.timings[k];
  }
  return acc;
}

function checkModels(files: Loaded[]): void {
  const n = files[0]!.body.models.length;
  const odd = files.find((f) => f.body.models.length !== n);
  if (odd) throw new RuntimeFailure(`${odd.file} is corrupt: it holds ${odd.body.models.length} models, not ${n}`);
}

export async function mergeShards(o: MergeOptions): Promise<MergeResult> {
  const loaded = await load(o.files);
  const meansFiles = loaded.filter((f) => f.body.kind === 'means');
  const phase1 = loaded.filter((f) => f.body.kind === 'shard' && f.body.phase === 1);
  const phase2 = loaded.filter((f) => f.body.kind === 'shard' && f.body.phase === 2);
  if (meansFiles.length > 1) throw new UsageError(`more than one means file given (${meansFiles.map((f) => f.file).join(', ')})`);
  if (meansFiles.length === 1 && phase1.length) throw new UsageError(`${phase1[0]!.file} is a phase-1 shard; with a means file, merge takes the phase-2 shards`, 'layerprobe merge MEANS phase2-shards… --out RUN');
  if (phase2.length && meansFiles.length === 0) throw new UsageError(`${phase2[0]!.file} is a phase-2 shard; merge it together with the means file it was computed against`, 'layerprobe merge MEANS phase2-shards… --out RUN');
  if (meansFiles.length === 1 && phase2.length === 0) throw new UsageError(`only a means file given; add the phase-2 shards written by \`audit --shard i/n --means ${meansFiles[0]!.file}\``);
  sameRun(loaded);
  const shards = (meansFiles.length ? phase2 : phase1).sort((a, b) => a.body.shard!.index - b.body.shard!.index);
  checkCoverage(shards);
  checkModels(loaded);
  const means = meansFiles[0];
  if (means) {
    const sha = sha256Hex(means.bytes);
    const stale = shards.filter((s) => s.body.means?.sha256 !== sha);
    if (stale.length) throw new UsageError(`${stale.map((s) => s.file).join(', ')} ${stale.length > 1 ? 'were' : 'was'} computed against another means file than ${means.file}`, 'rerun phase 2 against this means file');
  }
  const ref = loaded[0]!.body;
  const opts: AuditOptions = {
    ...(ref.audit as AuditOptions),
    ...(o.out !== undefined ? { out: o.out } : {}),
    force: o.force ?? false,
    command: o.command ?? `merge ${o.files.join(' ')}`,
    ...(o.onStage ? { onStage: o.onStage } : {}),
  };
  if (!Array.isArray(opts.models) || typeof opts.dataset !== 'string') throw new RuntimeFailure(`${loaded[0]!.file} is corrupt: its audit options are incomplete`);
  const { gates, metrics } = checkAuditOptions(opts);

  // The data and models must still be the ones the shards saw: the metrics read the model (NC3's
  // head, the manifest) and the report describes the data.
  const data = await prepareData(opts.dataset, opts.datasetOptions ?? {}, opts);
  const classWarnings = checkClassCounts(data);
  const names = new Set<string>();
  const models: PreparedModel[] = [];
  try {
    for (const spec of opts.models) models.push(await openAuditModel(spec, data, opts, names));
    const now = await runIdentity(opts, data, models, metrics);
    // merge runs no forward pass: the provider is the shards' (they agree, checked above).
    (now.options as Record<string, unknown>).executionProvider = (ref.run.options as Record<string, unknown>).executionProvider;
    if (fingerprint(now) !== ref.fingerprint) {
      throw new UsageError(`the ${difference(now, ref.run)} on this machine differ from what the shards were computed on`, 'merge where the same model and data files are');
    }
    const K = data.dataset.classes.length;
    const merged: ModelPasses[] = [];
    const meanPasses: Map<string, MeanPassResult>[] = [];
    for (let m = 0; m < models.length; m++) {
      o.onStage?.(`${models[m]!.name}: merging ${shards.length} shard${shards.length === 1 ? '' : 's'}`);
      if (!means) {
        merged.push(await mergePasses(shards, m));
        meanPasses.push(new Map());
        continue;
      }
      const passes = passesFromJson(means.body.models[m]!, means.file);
      merged.push(passes);
      const results = new Map<string, MeanPassResult>();
      for (const id of means.body.models[m]!.secondPassLayers) {
        const moments = passes.stats.get(id)!.moments();
        let acc: MeanPassStats | null = null;
        for (const s of shards) {
          const j = s.body.models[m]!.secondPass?.[id];
          if (j === undefined) throw new RuntimeFailure(`${s.file} has no second-pass statistics of layer ${id}`);
          const p = MeanPassStats.fromJSON(moments, j as Parameters<typeof MeanPassStats.fromJSON>[1]);
          if (acc) acc.merge(p);
          else acc = p;
        }
        results.set(id, acc!.result());
      }
      // The second pass's model work, as a single-process audit counts it.
      for (const s of shards) for (const k of Object.keys(passes.timings) as (keyof ModelPasses['timings'])[]) passes.timings[k] += s.body.models[m]!.timings[k];
      meanPasses.push(results);
    }

    if (!means && metrics.includes('collapse')) {
      const need = models.map((model, m) => ({ model: model.name, layers: secondPassLayers(model, merged[m]!.stats, classifierOutput(model, K).classifier) }));
      if (need.some((n) => n.layers.length)) {
        const file = o.means ?? path.join(path.dirname(shards[0]!.file), 'means.lpshard');
        if (!o.force && (await exists(file))) throw new UsageError(`${file} already exists`, 'pass --force to replace it, or choose another --means');
        const body: ShardBody = {
          ...ref,
          kind: 'means',
          phase: 1,
          createdAt: new Date().toISOString(),
          command: opts.command ?? 'merge',
          shard: null,
          indices: encodeIndices(data.indices),
          means: null,
          models: merged.map((p, m): ShardModel => passesToJson(models[m]!.name, p, need[m]!.layers)),
        };
        await writeFileAtomic(file, encodeShard(body));
        return { kind: 'means', file, shards: shards.length, layers: need };
      }
    }

    const result = await writeAuditRun(opts, data, metrics, gates, classWarnings, async (warnings) => {
      const runs = [];
      const caches = newBaselineCaches();
      for (const [m, model] of models.entries()) runs.push(await finishModel(model, data, opts, metrics, warnings, merged[m]!, meanPasses[m]!, caches));
      return runs;
    });
    return { kind: 'run', result, shards: shards.length };
  } finally {
    for (const m of models) await m.runner.dispose();
  }
}
