/**
 * `audit --shard i/n`: one task of a distributed audit (docs/distributed.md). It runs the same
 * passes as a single-process audit over its 1/n of the images (data/shard.ts) and writes a
 * statistics shard (stats/shard-file.ts) instead of computing metrics:
 *   phase 1 — the first pass: class moments, sample buffers, accuracy counts;
 *   phase 2 (`--means FILE`) — the second pass of exact NC1/NC4, projected on the global class
 *   means that `merge` of the phase-1 shards wrote to FILE.
 * Every shard records the identity of its run (versions, data and model hashes, layers,
 * preprocessing, options), so that `merge` can refuse shards of different runs.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError, RuntimeFailure } from '../errors.js';
import { shardIndices, shardName, type ShardSpec } from '../data/shard.js';
import { sha256File } from '../data/hash.js';
import { resolveModelPath } from '../runtime/open.js';
import { currentExecutionProvider } from '../runtime/onnx.js';
import { ClassStats } from '../stats/accumulator.js';
import { SampleBuffer } from '../stats/sample-buffer.js';
import { canonicalJson, decodeShard, encodeIndices, encodeShard, sha256Hex, type ShardBody, type ShardModel } from '../stats/shard-file.js';
import { exists, writeFileAtomic } from '../report/run-folder.js';
import { toolVersions } from '../util/versions.js';
import { prepareData, type PreparedData, type PreparedModel } from './prepare.js';
import {
  checkAuditOptions,
  checkClassCounts,
  checkLayerWidths,
  classifierOutput,
  DEFAULT_BUFFER_PER_CLASS,
  DEFAULT_PROBE_PER_CLASS,
  firstPass,
  openAuditModel,
  secondPass,
  secondPassLayers,
  type AuditOptions,
  type ModelPasses,
} from './audit.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import { DEFAULT_BASELINE_DRAWS } from './baseline.js';

export interface ShardRunOptions {
  shard: ShardSpec;
  /** Phase 2: the means file `merge` wrote from the phase-1 shards. */
  means?: string;
  /** A folder (the file is named shard-<i>-of-<n>[.phase2].lpshard) or a path ending in .lpshard. */
  out: string;
  force?: boolean;
}

export interface ShardRunResult {
  file: string;
  phase: 1 | 2;
  images: number;
}

export const SHARD_EXT = '.lpshard';

/** The audit options a shard stores for merge: everything but callbacks, with paths made absolute. */
export function storedAudit(opts: AuditOptions): Record<string, unknown> {
  const abs = (p: string): string => (existsSync(p) ? path.resolve(p) : p);
  const { onProgress: _p, onStage: _s, out: _o, force: _f, ...rest } = opts;
  const datasetOptions = opts.datasetOptions?.labels ? { ...opts.datasetOptions, labels: abs(opts.datasetOptions.labels) } : opts.datasetOptions;
  return JSON.parse(JSON.stringify({ ...rest, dataset: abs(opts.dataset), ...(datasetOptions ? { datasetOptions } : {}), models: opts.models.map((m) => ({ ...m, path: abs(m.path) })) })) as Record<string, unknown>;
}

/**
 * What every shard of one audit must share, in four sections merge compares one by one to say
 * which differs. Paths are left out (each machine may mount the data elsewhere); contents are
 * identified by sha256.
 */
export async function runIdentity(opts: AuditOptions, data: PreparedData, models: readonly PreparedModel[], metrics: readonly MetricGroup[]): Promise<ShardBody['run']> {
  const { node: _node, ...versions } = toolVersions();
  const ds = data.dataset;
  const labels = Buffer.from(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength);
  const { labels: labelsFile, ...datasetOptions } = opts.datasetOptions ?? {};
  return {
    versions,
    dataset: {
      name: ds.name,
      classes: [...ds.classes],
      itemShape: [...ds.itemShape],
      totalItems: ds.labels.length,
      // Where the files were found (root folder, registry location) may differ per machine.
      source: { kind: ds.source.kind, files: ds.source.files.map((f) => ({ sha256: f.sha256, bytes: f.bytes })), detail: Object.fromEntries(Object.entries(ds.source.detail ?? {}).filter(([k]) => k !== 'root' && k !== 'location')) },
      labelsSha256: sha256Hex(labels),
      ...(labelsFile ? { labelsFileSha256: await sha256File(labelsFile) } : {}),
      datasetOptions,
      sampling: data.sampling,
      selectedItems: data.indices.length,
      selectionSha256: sha256Hex(encodeIndices(data.indices)),
    },
    models: await Promise.all(
      models.map(async (m) => ({
        name: m.name,
        sha256: await sha256File(m.runner.path),
        format: m.runner.format,
        inputShape: m.runner.inputShape,
        preprocess: m.preprocess,
        output: m.output?.id ?? null,
        layers: m.plans.map((p) => ({ id: p.layer.id, reduction: p.reducer.describe, dim: p.reducer.dim })),
      })),
    ),
    options: {
      metrics,
      bufferPerClass: opts.bufferPerClass ?? DEFAULT_BUFFER_PER_CLASS,
      probePerClass: opts.probePerClass ?? DEFAULT_PROBE_PER_CLASS,
      baseline: opts.baseline ?? 'random-layer',
      baselineDraws: opts.baselineDraws ?? DEFAULT_BASELINE_DRAWS,
      baselineMetrics: opts.baselineMetrics ?? null,
      similarity: opts.similarity ?? null,
      ci: opts.ci ?? null,
      bootstrapReps: opts.bootstrapReps ?? null,
      probeLambda: opts.probeLambda ?? null,
      batchSize: opts.batchSize ?? 64,
      failUnder: opts.failUnder ?? [],
      failOver: opts.failOver ?? [],
      name: opts.name ?? null,
      // Another provider computes other float32 features: shards of one audit must share it.
      executionProvider: currentExecutionProvider(),
    },
  };
}

export function fingerprint(run: ShardBody['run']): string {
  return sha256Hex(canonicalJson(run));
}

/** A model's first-pass accumulators as stored in a shard or means file. */
export function passesToJson(name: string, p: ModelPasses, secondPassLayers: string[] = []): ShardModel {
  return {
    name,
    stats: Object.fromEntries([...p.stats].map(([id, s]) => [id, s.toJSON()])),
    buffers: Object.fromEntries([...p.buffers].map(([id, b]) => [id, b.toJSON()])),
    input: p.inputBuffer ? p.inputBuffer.toJSON() : null,
    probes: p.probes ? Object.fromEntries([...p.probes].map(([id, b]) => [id, b.toJSON()])) : null,
    correct: p.correct,
    seen: p.seen,
    confusion: p.confusion,
    timings: { ...p.timings },
    secondPass: null,
    secondPassLayers,
  };
}

/** The inverse of passesToJson; `file` names the source in errors. */
export function passesFromJson(m: ShardModel, file: string): ModelPasses {
  const wrap = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new RuntimeFailure(`${file}: ${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  return {
    stats: new Map(Object.entries(m.stats).map(([id, j]) => [id, wrap(`layer ${id}`, () => ClassStats.fromJSON(j))])),
    buffers: new Map(Object.entries(m.buffers).map(([id, j]) => [id, wrap(`layer ${id}`, () => SampleBuffer.fromJSON(j))])),
    inputBuffer: m.input === null ? null : wrap('input buffer', () => SampleBuffer.fromJSON(m.input)),
    probes: m.probes === null ? null : new Map(Object.entries(m.probes).map(([id, j]) => [id, wrap(`probe sample of layer ${id}`, () => SampleBuffer.fromJSON(j))])),
    correct: m.correct,
    seen: m.seen,
    confusion: m.confusion ?? null,
    timings: { ...m.timings },
  };
}

function shardFile(out: string, s: ShardSpec, phase: 1 | 2): string {
  if (out.endsWith(SHARD_EXT)) return out;
  const w = String(s.count - 1).length;
  return path.join(out, `shard-${String(s.index).padStart(w, '0')}-of-${s.count}${phase === 2 ? '.phase2' : ''}${SHARD_EXT}`);
}

export async function auditShard(opts: AuditOptions, s: ShardRunOptions): Promise<ShardRunResult> {
  const { metrics } = checkAuditOptions(opts);
  for (const m of opts.models) await resolveModelPath(m.path);
  const phase: 1 | 2 = s.means ? 2 : 1;
  const file = shardFile(s.out, s.shard, phase);
  if (!s.force && (await exists(file))) throw new UsageError(`${file} already exists`, 'pass --force to replace it (a retried task may), or choose another --out');
  let meansBody: ShardBody | null = null;
  let meansSha = '';
  if (s.means) {
    if (!(await exists(s.means))) throw new UsageError(`means file ${s.means} does not exist`, 'run `layerprobe merge` on the phase-1 shards first; it writes the means file when a second pass is needed');
    const bytes = await readFile(s.means);
    meansBody = decodeShard(bytes, s.means);
    if (meansBody.kind !== 'means') throw new UsageError(`${s.means} is a shard, not a means file`, 'pass the file `layerprobe merge` wrote from the phase-1 shards');
    meansSha = sha256Hex(bytes);
  }
  const full = await prepareData(opts.dataset, opts.datasetOptions ?? {}, opts);
  checkClassCounts(full);
  const data: PreparedData = { ...full, indices: shardIndices(full.indices, full.dataset.labels, s.shard) };
  const names = new Set<string>();
  const models: PreparedModel[] = [];
  try {
    for (const spec of opts.models) models.push(await openAuditModel(spec, full, opts, names));
    for (const m of models) checkLayerWidths(m);
    const run = await runIdentity(opts, full, models, metrics);
    const fp = fingerprint(run);
    if (meansBody && meansBody.fingerprint !== fp) {
      throw new UsageError(`${s.means} belongs to another audit (other data, models, options or version) than this command line`, 'run phase 2 with the same options as phase 1');
    }
    const K = full.dataset.classes.length;
    const out: ShardModel[] = [];
    for (const [i, model] of models.entries()) {
      opts.onStage?.(`${model.name}: shard ${shardName(s.shard)}, phase ${phase}: ${data.indices.length} of ${full.indices.length} images`);
      if (!meansBody) {
        out.push(passesToJson(model.name, await firstPass(model, data, opts, metrics)));
        continue;
      }
      const stored = meansBody.models[i]!;
      const stats = new Map(Object.entries(stored.stats).map(([id, j]) => [id, ClassStats.fromJSON(j)]));
      const { classifier } = classifierOutput(model, K);
      const timings = { images: 0, batches: 0, forwardMs: 0, reduceMs: 0, sinkMs: 0, totalMs: 0 };
      const wanted = secondPassLayers(model, stats, classifier);
      const passes = wanted.length && metrics.includes('collapse') ? await secondPass(model, data, stats, classifier, K, opts, timings) : new Map();
      out.push({ name: model.name, stats: {}, buffers: {}, input: null, probes: null, correct: 0, seen: 0, confusion: null, timings, secondPass: Object.fromEntries([...passes].map(([id, p]) => [id, p.toJSON()])), secondPassLayers: [] });
    }
    const body: ShardBody = {
      kind: 'shard',
      phase,
      createdAt: new Date().toISOString(),
      command: opts.command ?? 'audit',
      shard: { index: s.shard.index, count: s.shard.count },
      indices: encodeIndices(data.indices),
      run,
      fingerprint: fp,
      audit: storedAudit(opts),
      means: meansBody ? { sha256: meansSha } : null,
      models: out,
    };
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await writeFileAtomic(file, encodeShard(body));
    return { file, phase, images: data.indices.length };
  } finally {
    for (const m of models) await m.runner.dispose();
  }
}
