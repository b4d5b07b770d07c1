/**
 * A seeded, stratified, bounded sample of feature rows, for the metrics that need samples rather
 * than moments (ranks, probes, bootstraps, fallbacks of NC1/NC4). Memory is bounded by
 * K·perClass·d floats whatever the number of rows offered.
 *
 * Selection is bottom-k by key: every row gets the key hash(seed, dataset index) and each class
 * keeps the perClass rows with the smallest (key, index). The kept set therefore depends only on
 * the seed and on which images the class holds, never on the order or batching in which they
 * arrive, so buffers of disjoint shards merge into exactly the buffer one pass over all images
 * would hold (docs/distributed.md). Rows are handed out sorted by key within each class, so the
 * matrix is identical too, not just the set.
 */
import { z } from 'zod';
import { RuntimeFailure } from '../errors.js';
import { checkLabel, throwNonFinite } from './moments.js';

export interface SampleMatrix {
  /** n×d row-major. */
  X: Float32Array;
  n: number;
  d: number;
  /** Number of label values. */
  K: number;
  labels: Int32Array;
  /** Dataset index of each row. */
  ids: Int32Array;
  /** The model's predicted class per row, when every kept row came with one. */
  predictions?: Int32Array;
}

export interface SampleBufferOptions {
  K: number;
  perClass: number;
  seed: number;
  /** Width; fixed by the first add when omitted. */
  d?: number;
}

/** murmur3's 32-bit finaliser: a bijection on 32 bits that mixes every input bit into every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The selection key of dataset item `id` under `seed`: 52 bits from two mixed words, so ties
 * (broken by the index) are practically absent. A pure function of (seed, id): what makes the
 * selection independent of sharding.
 */
export function selectionKey(seed: number, id: number): number {
  const a = fmix32((seed >>> 0) ^ fmix32((id >>> 0) ^ 0x9e3779b9));
  const b = fmix32(a ^ Math.imul(id >>> 0, 0x27d4eb2f) ^ 0x165667b1);
  return a * 0x100000 + (b >>> 12);
}

interface Reservoir {
  seen: number;
  size: number;
  rows: Float32Array;
  ids: Int32Array;
  preds: Int32Array;
  keys: Float64Array;
  /** Slot holding the largest (key, id), or -1 when unknown. */
  max: number;
}

const FORMAT = 'layerprobe/sample-buffer';
const jsonSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(2),
  K: z.number().int().positive(),
  d: z.number().int().nonnegative().nullable(),
  perClass: z.number().int().positive(),
  seed: z.number().int(),
  nextId: z.number().int().nonnegative(),
  allPredicted: z.boolean(),
  classes: z.array(
    z.object({
      seen: z.number().int().nonnegative(),
      /** base64 little-endian float32, size·d values, in key order. */
      rows: z.string(),
      ids: z.array(z.number().int()),
      /** selectionKey(seed, id) of each row: recomputed and checked on load. */
      keys: z.array(z.number().nonnegative()),
      preds: z.array(z.number().int()),
    }),
  ),
});
export type SampleBufferJSON = z.infer<typeof jsonSchema>;

/** (key, id) order: the key decides, the index breaks the (practically absent) ties. */
function before(ka: number, ia: number, kb: number, ib: number): boolean {
  return ka < kb || (ka === kb && ia < ib);
}

export class SampleBuffer {
  readonly K: number;
  readonly perClass: number;
  readonly seed: number;
  private dim: number | null;
  private readonly res: Reservoir[];
  /** Dataset index given to rows added without ids: their position in the stream. */
  private nextId = 0;
  private allPredicted = true;

  constructor(opts: SampleBufferOptions) {
    if (!Number.isInteger(opts.K) || opts.K < 1) throw new Error(`SampleBuffer: K must be a positive integer, got ${opts.K}`);
    if (!Number.isInteger(opts.perClass) || opts.perClass < 1) {
      throw new Error(`SampleBuffer: perClass must be a positive integer, got ${opts.perClass}`);
    }
    this.K = opts.K;
    this.perClass = opts.perClass;
    this.seed = opts.seed;
    this.dim = opts.d ?? null;
    this.res = Array.from({ length: opts.K }, () => ({
      seen: 0,
      size: 0,
      rows: new Float32Array(0),
      ids: new Int32Array(0),
      preds: new Int32Array(0),
      keys: new Float64Array(0),
      max: -1,
    }));
  }

  get d(): number | null {
    return this.dim;
  }

  /** Rows currently held. */
  get size(): number {
    return this.res.reduce((s, r) => s + r.size, 0);
  }

  /** Rows of class k offered so far. */
  seen(k: number): number {
    return this.res[k]!.seen;
  }

  /**
   * Offer n rows (n×d row-major). `ids` are the rows' dataset indices (default: their position
   * in the stream); `predictions` the model's predicted class per row, kept for NC4.
   */
  add(features: Float32Array, n: number, d: number, labels: Int32Array, ids?: Int32Array, predictions?: Int32Array): void {
    if (this.dim === null) this.dim = d;
    if (d !== this.dim) throw new Error(`SampleBuffer.add: width ${d}, buffer holds width ${this.dim}`);
    if (features.length !== n * d) throw new Error(`SampleBuffer.add: ${features.length} values for ${n}×${d}`);
    if (labels.length !== n) throw new Error(`SampleBuffer.add: ${labels.length} labels for ${n} rows`);
    if (ids && ids.length !== n) throw new Error(`SampleBuffer.add: ${ids.length} ids for ${n} rows`);
    if (predictions && predictions.length !== n) throw new Error(`SampleBuffer.add: ${predictions.length} predictions for ${n} rows`);
    // Validate everything first so that a rejected batch leaves the buffer untouched.
    for (let i = 0; i < n; i++) {
      checkLabel(labels[i]!, this.K, i);
      let rowSum = 0;
      for (let j = 0; j < d; j++) rowSum += features[i * d + j]!;
      if (!Number.isFinite(rowSum)) throwNonFinite(features, i, d);
    }
    if (!predictions) this.allPredicted = false;
    for (let i = 0; i < n; i++) {
      const r = this.res[labels[i]!]!;
      r.seen++;
      const id = ids ? ids[i]! : this.nextId + i;
      this.offer(r, d, selectionKey(this.seed, id), id, features.subarray(i * d, (i + 1) * d), predictions ? predictions[i]! : -1);
    }
    this.nextId += n;
  }

  /** Keep the row if it is among the perClass smallest (key, id) of its class so far. */
  private offer(r: Reservoir, d: number, key: number, id: number, row: Float32Array, pred: number): void {
    let slot: number;
    if (r.size < this.perClass) {
      this.grow(r, d, r.size + 1);
      slot = r.size++;
    } else {
      // The largest kept (key, id) is found lazily, once per replacement.
      if (r.max < 0) r.max = this.largest(r);
      if (!before(key, id, r.keys[r.max]!, r.ids[r.max]!)) return;
      slot = r.max;
    }
    r.max = -1;
    r.rows.set(row, slot * d);
    r.ids[slot] = id;
    r.keys[slot] = key;
    r.preds[slot] = pred;
  }

  private largest(r: Reservoir): number {
    let m = 0;
    for (let s = 1; s < r.size; s++) if (before(r.keys[m]!, r.ids[m]!, r.keys[s]!, r.ids[s]!)) m = s;
    return m;
  }

  /** Doubling growth up to perClass, so a class that never fills does not cost perClass·d. */
  private grow(r: Reservoir, d: number, need: number): void {
    if (r.ids.length >= need) return;
    const cap = Math.min(this.perClass, Math.max(need, 2 * r.ids.length, 16));
    const rows = new Float32Array(cap * d);
    rows.set(r.rows.subarray(0, r.size * d));
    const ids = new Int32Array(cap);
    ids.set(r.ids.subarray(0, r.size));
    const preds = new Int32Array(cap);
    preds.set(r.preds.subarray(0, r.size));
    const keys = new Float64Array(cap);
    keys.set(r.keys.subarray(0, r.size));
    r.rows = rows;
    r.ids = ids;
    r.preds = preds;
    r.keys = keys;
  }

  /** Slots of a class in (key, id) order. */
  private order(r: Reservoir): number[] {
    return Array.from({ length: r.size }, (_, s) => s).sort((a, b) => r.keys[a]! - r.keys[b]! || r.ids[a]! - r.ids[b]!);
  }

  /** The kept rows, class by class (ascending), in key order within a class. */
  matrix(): SampleMatrix {
    const d = this.dim ?? 0;
    const n = this.size;
    const X = new Float32Array(n * d);
    const labels = new Int32Array(n);
    const ids = new Int32Array(n);
    const predictions = new Int32Array(n);
    let o = 0;
    this.res.forEach((r, k) => {
      for (const s of this.order(r)) {
        X.set(r.rows.subarray(s * d, (s + 1) * d), o * d);
        labels[o] = k;
        ids[o] = r.ids[s]!;
        predictions[o] = r.preds[s]!;
        o++;
      }
    });
    const m: SampleMatrix = { X, n, d, K: this.K, labels, ids };
    if (this.allPredicted && n > 0) m.predictions = predictions;
    return m;
  }

  /**
   * Fold in the buffer of another shard of the same images (disjoint dataset indices). Because
   * the selection is bottom-k by a key that depends only on (seed, index), the result is exactly
   * the buffer of one pass over both shards, in any merge order.
   */
  merge(other: SampleBuffer): this {
    if (other.K !== this.K || other.perClass !== this.perClass) {
      throw new RuntimeFailure(`cannot merge sample buffers (K=${other.K}, perClass=${other.perClass}) into (K=${this.K}, perClass=${this.perClass})`);
    }
    if (other.seed !== this.seed) throw new RuntimeFailure(`cannot merge sample buffers of seed ${other.seed} into seed ${this.seed}: they select different images`);
    if (other.dim !== null && this.dim !== null && other.dim !== this.dim) {
      throw new RuntimeFailure(`cannot merge sample buffers of width ${other.dim} and ${this.dim}`);
    }
    const d = this.dim ?? other.dim ?? 0;
    this.dim = this.dim ?? other.dim;
    this.res.forEach((a, k) => {
      const b = other.res[k]!;
      for (let s = 0; s < b.size; s++) this.offer(a, d, b.keys[s]!, b.ids[s]!, b.rows.subarray(s * d, (s + 1) * d), b.preds[s]!);
      a.seen += b.seen;
    });
    this.allPredicted = this.allPredicted && other.allPredicted;
    this.nextId += other.nextId;
    return this;
  }

  toJSON(): SampleBufferJSON {
    const d = this.dim ?? 0;
    return {
      format: FORMAT,
      version: 2,
      K: this.K,
      d: this.dim,
      perClass: this.perClass,
      seed: this.seed,
      nextId: this.nextId,
      allPredicted: this.allPredicted,
      classes: this.res.map((r) => {
        const order = this.order(r);
        const buf = Buffer.alloc(r.size * d * 4);
        order.forEach((s, o) => {
          for (let j = 0; j < d; j++) buf.writeFloatLE(r.rows[s * d + j]!, (o * d + j) * 4);
        });
        return {
          seen: r.seen,
          rows: buf.toString('base64'),
          ids: order.map((s) => r.ids[s]!),
          keys: order.map((s) => r.keys[s]!),
          preds: order.map((s) => r.preds[s]!),
        };
      }),
    };
  }

  /** Restores a buffer; every key is recomputed from (seed, id) and must match the stored one. */
  static fromJSON(json: unknown): SampleBuffer {
    const parsed = jsonSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? issue.path.join('.') || '(root)' : '(root)';
      throw new RuntimeFailure(`not a layerprobe sample-buffer shard: ${where}: ${issue?.message ?? 'invalid'}`);
    }
    const j = parsed.data;
    if (j.classes.length !== j.K) throw new RuntimeFailure(`sample-buffer shard: ${j.classes.length} classes, expected K=${j.K}`);
    const b = new SampleBuffer({ K: j.K, perClass: j.perClass, seed: j.seed, ...(j.d === null ? {} : { d: j.d }) });
    const d = j.d ?? 0;
    b.nextId = j.nextId;
    b.allPredicted = j.allPredicted;
    j.classes.forEach((c, k) => {
      const size = c.ids.length;
      const buf = Buffer.from(c.rows, 'base64');
      if (buf.length !== size * d * 4 || c.preds.length !== size || c.keys.length !== size || size > j.perClass || size > c.seen) {
        throw new RuntimeFailure(`sample-buffer shard: class ${k} is inconsistent (${size} ids, ${buf.length / 4} values, width ${d})`);
      }
      c.ids.forEach((id, i) => {
        if (selectionKey(j.seed, id) !== c.keys[i]) throw new RuntimeFailure(`sample-buffer shard: class ${k}: the key of item ${id} is not its selection key under seed ${j.seed}`);
      });
      const r = b.res[k]!;
      r.rows = new Float32Array(size * d);
      for (let i = 0; i < size * d; i++) r.rows[i] = buf.readFloatLE(i * 4);
      r.ids = Int32Array.from(c.ids);
      r.keys = Float64Array.from(c.keys);
      r.preds = Int32Array.from(c.preds);
      r.size = size;
      r.seen = c.seen;
      r.max = -1;
    });
    return b;
  }
}
