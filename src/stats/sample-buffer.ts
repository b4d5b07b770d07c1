/**
 * A seeded, stratified, bounded sample of feature rows: a reservoir of at most perClass rows per
 * class (Algorithm R), for the metrics that need samples rather than moments (ranks, probes,
 * NC4, bootstraps, NC1 when the layer is too wide for a d×d matrix). Memory is bounded by
 * K·perClass·d floats whatever the number of rows offered.
 *
 * Each class draws from its own Rng (seeded from the buffer seed and the class), so the rows kept
 * for a class depend only on the seed and the order in which that class's rows arrive.
 */
import { z } from 'zod';
import { RuntimeFailure } from '../errors.js';
import { Rng } from '../util/rng.js';
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

function classSeed(seed: number, k: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca77)) >>> 0;
}

interface Reservoir {
  seen: number;
  size: number;
  rows: Float32Array;
  ids: Int32Array;
  preds: Int32Array;
  rng: Rng;
}

const FORMAT = 'layerprobe/sample-buffer';
const jsonSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(1),
  K: z.number().int().positive(),
  d: z.number().int().nonnegative().nullable(),
  perClass: z.number().int().positive(),
  seed: z.number().int(),
  nextId: z.number().int().nonnegative(),
  allPredicted: z.boolean(),
  classes: z.array(
    z.object({
      seen: z.number().int().nonnegative(),
      /** base64 little-endian float32, size·d values. */
      rows: z.string(),
      ids: z.array(z.number().int()),
      preds: z.array(z.number().int()),
    }),
  ),
});
export type SampleBufferJSON = z.infer<typeof jsonSchema>;

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
    this.res = Array.from({ length: opts.K }, (_, k) => ({
      seen: 0,
      size: 0,
      rows: new Float32Array(0),
      ids: new Int32Array(0),
      preds: new Int32Array(0),
      rng: new Rng(classSeed(opts.seed, k)),
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
    // Validate everything first so that a rejected batch leaves the buffer (and its random
    // streams) untouched.
    for (let i = 0; i < n; i++) {
      checkLabel(labels[i]!, this.K, i);
      let rowSum = 0;
      for (let j = 0; j < d; j++) rowSum += features[i * d + j]!;
      if (!Number.isFinite(rowSum)) throwNonFinite(features, i, d);
    }
    if (!predictions) this.allPredicted = false;
    for (let i = 0; i < n; i++) {
      const r = this.res[labels[i]!]!;
      let slot: number;
      if (r.size < this.perClass) {
        slot = r.size;
      } else {
        const j = r.rng.int(r.seen + 1);
        slot = j < this.perClass ? j : -1;
      }
      r.seen++;
      const id = ids ? ids[i]! : this.nextId + i;
      if (slot < 0) continue;
      const row = features.subarray(i * d, (i + 1) * d);
      if (slot === r.size) {
        this.grow(r, d, r.size + 1);
        r.size++;
      }
      r.rows.set(row, slot * d);
      r.ids[slot] = id;
      r.preds[slot] = predictions ? predictions[i]! : -1;
    }
    this.nextId += n;
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
    r.rows = rows;
    r.ids = ids;
    r.preds = preds;
  }

  /** The kept rows, class by class (ascending), in slot order within a class. */
  matrix(): SampleMatrix {
    const d = this.dim ?? 0;
    const n = this.size;
    const X = new Float32Array(n * d);
    const labels = new Int32Array(n);
    const ids = new Int32Array(n);
    const predictions = new Int32Array(n);
    let o = 0;
    this.res.forEach((r, k) => {
      X.set(r.rows.subarray(0, r.size * d), o * d);
      labels.fill(k, o, o + r.size);
      ids.set(r.ids.subarray(0, r.size), o);
      predictions.set(r.preds.subarray(0, r.size), o);
      o += r.size;
    });
    const m: SampleMatrix = { X, n, d, K: this.K, labels, ids };
    if (this.allPredicted && n > 0) m.predictions = predictions;
    return m;
  }

  /**
   * Fold in another buffer (another shard of the same stream). For each class the result is a
   * uniform sample without replacement of the union of both streams: the number taken from each
   * side is hypergeometric in the counts seen, then rows are drawn uniformly from each reservoir.
   */
  merge(other: SampleBuffer): this {
    if (other.K !== this.K || other.perClass !== this.perClass) {
      throw new RuntimeFailure(`cannot merge sample buffers (K=${other.K}, perClass=${other.perClass}) into (K=${this.K}, perClass=${this.perClass})`);
    }
    if (other.dim !== null && this.dim !== null && other.dim !== this.dim) {
      throw new RuntimeFailure(`cannot merge sample buffers of width ${other.dim} and ${this.dim}`);
    }
    const d = this.dim ?? other.dim ?? 0;
    this.dim = this.dim ?? other.dim;
    this.res.forEach((a, k) => {
      const b = other.res[k]!;
      if (b.seen === 0) return;
      const total = a.size + b.size;
      let takeA = a.size;
      let takeB = b.size;
      if (total > this.perClass) {
        let remA = a.seen;
        let remB = b.seen;
        takeA = 0;
        takeB = 0;
        for (let i = 0; i < this.perClass; i++) {
          if (a.rng.next() * (remA + remB) < remA) {
            takeA++;
            remA--;
          } else {
            takeB++;
            remB--;
          }
        }
      }
      const pick = (r: Reservoir, m: number): number[] => {
        const idx = Array.from({ length: r.size }, (_, i) => i);
        for (let i = 0; i < m; i++) {
          const j = i + a.rng.int(r.size - i);
          [idx[i], idx[j]] = [idx[j]!, idx[i]!];
        }
        return idx.slice(0, m);
      };
      const fromA = pick(a, takeA);
      const fromB = pick(b, takeB);
      const size = takeA + takeB;
      const rows = new Float32Array(size * d);
      const ids = new Int32Array(size);
      const preds = new Int32Array(size);
      let o = 0;
      for (const [r, list] of [[a, fromA], [b, fromB]] as const) {
        for (const s of list) {
          rows.set(r.rows.subarray(s * d, (s + 1) * d), o * d);
          ids[o] = r.ids[s]!;
          preds[o] = r.preds[s]!;
          o++;
        }
      }
      a.rows = rows;
      a.ids = ids;
      a.preds = preds;
      a.size = size;
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
      version: 1,
      K: this.K,
      d: this.dim,
      perClass: this.perClass,
      seed: this.seed,
      nextId: this.nextId,
      allPredicted: this.allPredicted,
      classes: this.res.map((r) => {
        const buf = Buffer.alloc(r.size * d * 4);
        for (let i = 0; i < r.size * d; i++) buf.writeFloatLE(r.rows[i]!, i * 4);
        return {
          seen: r.seen,
          rows: buf.toString('base64'),
          ids: Array.from(r.ids.subarray(0, r.size)),
          preds: Array.from(r.preds.subarray(0, r.size)),
        };
      }),
    };
  }

  /**
   * Restores a buffer. The per-class random streams restart from a seed derived from the saved
   * seed and the rows seen, so continuing to add rows stays deterministic.
   */
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
      if (buf.length !== size * d * 4 || c.preds.length !== size || size > j.perClass || size > c.seen) {
        throw new RuntimeFailure(`sample-buffer shard: class ${k} is inconsistent (${size} ids, ${buf.length / 4} values, width ${d})`);
      }
      const r = b.res[k]!;
      r.rows = new Float32Array(size * d);
      for (let i = 0; i < size * d; i++) r.rows[i] = buf.readFloatLE(i * 4);
      r.ids = Int32Array.from(c.ids);
      r.preds = Int32Array.from(c.preds);
      r.size = size;
      r.seen = c.seen;
      r.rng = new Rng(classSeed(j.seed ^ c.seen, k));
    });
    return b;
  }
}
