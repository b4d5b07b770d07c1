/**
 * The statistics shard file (`.lpshard`): what one task of a distributed audit leaves for `merge`
 * (docs/distributed.md#the-shard-file). Version 1:
 *
 *   gzip( header line "\n" body )
 *   header = {"format":"layerprobe/stats-shard","version":1,"bodyBytes":B,"bodySha256":H}
 *   body   = JSON (ShardBody below): which run and which images it covers, and per model and
 *            layer the ClassStats accumulators (layerprobe/class-stats v1), the sample buffer rows
 *            with their selection keys (layerprobe/sample-buffer v2), the accuracy counts and, in
 *            phase 2, the second-pass accumulators.
 *
 * The header is read first so that a shard of another format version is refused by name; the
 * body's length and sha256 catch truncation and corruption that gzip's own check might not
 * (a file cut at a member boundary). Nothing here knows about models or data: the run identity
 * is an opaque JSON object that merge compares section by section.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';

export const SHARD_FORMAT = 'layerprobe/stats-shard';
export const SHARD_VERSION = 1;

const headerSchema = z.object({
  format: z.literal(SHARD_FORMAT),
  version: z.number().int(),
  bodyBytes: z.number().int().nonnegative(),
  bodySha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const timingsSchema = z.object({
  images: z.number(),
  batches: z.number(),
  forwardMs: z.number(),
  reduceMs: z.number(),
  sinkMs: z.number(),
  totalMs: z.number(),
});

const modelSchema = z.object({
  name: z.string(),
  /** Layer id → ClassStats JSON (phase 1 and means files). */
  stats: z.record(z.string(), z.unknown()),
  /** Layer id → SampleBuffer JSON (phase 1 and means files). */
  buffers: z.record(z.string(), z.unknown()),
  /** The preprocessed-input buffer of the random-layer baseline, or null. */
  input: z.unknown().nullable(),
  /** Layer id → the linear probe's SampleBuffer JSON, or null when the probe is not measured. */
  probes: z.record(z.string(), z.unknown()).nullable(),
  correct: z.number().int().nonnegative(),
  seen: z.number().int().nonnegative(),
  /** The model's output confusion counts (K×K, true × predicted), or null; absent in older shards. */
  confusion: z.array(z.array(z.number().int().nonnegative())).nullable().optional(),
  timings: timingsSchema,
  /** Layer id → MeanPassStats JSON (phase 2 only). */
  secondPass: z.record(z.string(), z.unknown()).nullable(),
  /** Layers that need the second pass (means files only; empty: the run needs no phase 2). */
  secondPassLayers: z.array(z.string()),
});

const bodySchema = z.object({
  /** shard: one task's part; means: the merge of all phase-1 shards, input of phase 2. */
  kind: z.enum(['shard', 'means']),
  /** 1: first pass (moments, buffers); 2: second pass against a means file. */
  phase: z.union([z.literal(1), z.literal(2)]),
  createdAt: z.string(),
  command: z.string(),
  /** 0-based shard of count; null in a means file. */
  shard: z.object({ index: z.number().int().nonnegative(), count: z.number().int().positive() }).nullable(),
  /** Dataset indices covered, ascending, base64 int32 little-endian. */
  indices: z.string(),
  /** What must be equal in every shard of one audit: versions, dataset, models, options. */
  run: z.object({ versions: z.unknown(), dataset: z.unknown(), models: z.unknown(), options: z.unknown() }),
  /** sha256 of the canonical JSON of `run`. */
  fingerprint: z.string(),
  /** The audit's options as given (paths as resolved on the shard's machine), for merge to rerun the metrics. */
  audit: z.unknown(),
  /** Phase 2: the sha256 of the means file the second pass projected on. */
  means: z.object({ sha256: z.string() }).nullable(),
  models: z.array(modelSchema),
});

export type ShardBody = z.infer<typeof bodySchema>;
export type ShardModel = z.infer<typeof modelSchema>;

/** JSON with object keys sorted, so equal content always hashes equal. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function encodeIndices(a: Int32Array): string {
  const b = Buffer.alloc(a.length * 4);
  a.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b.toString('base64');
}

export function decodeIndices(s: string, file: string): Int32Array {
  const b = Buffer.from(s, 'base64');
  if (b.length % 4 !== 0) throw new RuntimeFailure(`${file}: the index list is corrupt (${b.length} bytes)`);
  const a = new Int32Array(b.length / 4);
  for (let i = 0; i < a.length; i++) a[i] = b.readInt32LE(i * 4);
  return a;
}

export function encodeShard(body: ShardBody): Buffer {
  const text = Buffer.from(JSON.stringify(body), 'utf8');
  const header = JSON.stringify({ format: SHARD_FORMAT, version: SHARD_VERSION, bodyBytes: text.length, bodySha256: sha256Hex(text) });
  return gzipSync(Buffer.concat([Buffer.from(header + '\n', 'utf8'), text]), { level: 1 });
}

/** Reads a shard file's bytes; `file` names it in every error. */
export function decodeShard(bytes: Uint8Array, file: string): ShardBody {
  let raw: Buffer;
  try {
    raw = gunzipSync(bytes);
  } catch (e) {
    throw new RuntimeFailure(`${file} is truncated or corrupt (${errorMessage(e)})`, 'rerun the task that wrote it');
  }
  const nl = raw.indexOf(0x0a);
  let header: z.infer<typeof headerSchema>;
  try {
    const parsed = headerSchema.safeParse(JSON.parse(raw.subarray(0, nl < 0 ? raw.length : nl).toString('utf8')));
    if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'bad header');
    header = parsed.data;
  } catch {
    throw new UsageError(`${file} is not a layerprobe statistics shard`);
  }
  if (header.version !== SHARD_VERSION) {
    throw new UsageError(`${file} is a version-${header.version} statistics shard; this layerprobe reads version ${SHARD_VERSION}`, 'write every shard and merge them with the same layerprobe version');
  }
  const text = raw.subarray(nl + 1);
  if (text.length !== header.bodyBytes || sha256Hex(text) !== header.bodySha256) {
    throw new RuntimeFailure(`${file} is truncated or corrupt (its body does not match the length and sha256 in its header)`, 'rerun the task that wrote it');
  }
  let json: unknown;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new RuntimeFailure(`${file} is corrupt (${errorMessage(e)})`);
  }
  const body = bodySchema.safeParse(json);
  if (!body.success) {
    const issue = body.error.issues[0];
    throw new RuntimeFailure(`${file} is corrupt: ${issue ? issue.path.join('.') || '(root)' : '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return body.data;
}
