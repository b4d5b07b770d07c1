/**
 * Streaming per-class statistics of one layer: exact over any number of batches, mergeable
 * across shards, memory independent of N.
 *
 * Kept per class: n_k, the float64 sum of the features, and the sum of squared deviations from
 * the class mean (combined across batches with Chan et al.'s pairwise update), plus, when the
 * width allows, the within-class scatter matrix Σ_k Σ_{i∈k}(h−μ_k)(h−μ_k)ᵀ. Deviations rather
 * than raw Σ‖h‖² / Σhhᵀ are kept because features with a large common offset would otherwise
 * cancel catastrophically in tr(Σ_W) = (1/N)(Σ‖h‖² − Σ n_k‖μ_k‖²) and in S − Σ n_k μ_k μ_kᵀ;
 * the raw forms remain available as getters.
 *
 * Scatter update per batch: one onnxruntime Gram of the batch rows centred on their batch class
 * means, with one extra row √(n_a n_b / (n_a+n_b))·(m_b − μ_a) per class already seen (the
 * Chan correction), so every term is positive semidefinite and nothing is subtracted.
 */
import { z } from 'zod';
import { RuntimeFailure } from '../errors.js';
import { gram } from '../linalg/ort-ops.js';
import {
  betweenTrace as momentsBetweenTrace,
  checkLabel,
  classVariance as momentsClassVariance,
  globalMean as momentsGlobalMean,
  withinCovariance as momentsWithinCovariance,
  throwNonFinite,
  withinTrace as momentsWithinTrace,
  type ClassMoments,
  type MomentPrecision,
} from './moments.js';

export interface ClassStatsOptions {
  /** Keep the d×d within-class scatter only when d ≤ this (memory d²·8 bytes). Default 2048. */
  maxMomentDim?: number;
  /** Dtype of the per-batch Gram product; accumulation is float64 either way. Default float32. */
  momentPrecision?: MomentPrecision;
}

const FORMAT = 'layerprobe/class-stats';

const jsonSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(1),
  K: z.number().int().positive(),
  d: z.number().int().nonnegative(),
  maxMomentDim: z.number().int().nonnegative(),
  momentPrecision: z.enum(['float32', 'float64']),
  counts: z.array(z.number().int().nonnegative()),
  sums: z.string(),
  ssw: z.array(z.number().nonnegative()),
  /** Upper triangle, row by row, base64 little-endian float64; null when not kept. */
  scatter: z.string().nullable(),
});

export type ClassStatsJSON = z.infer<typeof jsonSchema>;

function encodeF64(a: Float64Array): string {
  const buf = Buffer.alloc(a.length * 8);
  for (let i = 0; i < a.length; i++) buf.writeDoubleLE(a[i]!, i * 8);
  return buf.toString('base64');
}

function decodeF64(s: string, expected: number, what: string): Float64Array {
  const buf = Buffer.from(s, 'base64');
  if (buf.length !== expected * 8) {
    throw new RuntimeFailure(`class-stats shard: ${what} holds ${buf.length / 8} values, expected ${expected}`);
  }
  const a = new Float64Array(expected);
  for (let i = 0; i < expected; i++) a[i] = buf.readDoubleLE(i * 8);
  return a;
}

export class ClassStats {
  readonly K: number;
  readonly d: number;
  readonly maxMomentDim: number;
  readonly momentPrecision: MomentPrecision;
  private readonly n: Float64Array;
  private readonly sums: Float64Array;
  private readonly sswK: Float64Array;
  private scatter: Float64Array | null;
  /** Updates run one after another so each sees the state its predecessor left. */
  private queue: Promise<void> = Promise.resolve();
  private inFlight = 0;

  constructor(K: number, d: number, opts: ClassStatsOptions = {}) {
    if (!Number.isInteger(K) || K < 1) throw new Error(`ClassStats: K must be a positive integer, got ${K}`);
    if (!Number.isInteger(d) || d < 0) throw new Error(`ClassStats: d must be a non-negative integer, got ${d}`);
    this.K = K;
    this.d = d;
    this.maxMomentDim = opts.maxMomentDim ?? 2048;
    this.momentPrecision = opts.momentPrecision ?? 'float32';
    this.n = new Float64Array(K);
    this.sums = new Float64Array(K * d);
    this.sswK = new Float64Array(K);
    this.scatter = d <= this.maxMomentDim ? new Float64Array(d * d) : null;
  }

  /** Whether the within-class scatter (and so Σ_W itself, hence NC1) is available. */
  get hasScatter(): boolean {
    return this.scatter !== null;
  }

  /**
   * Add a batch of n rows (row-major n×d). Labels outside [0,K) and non-finite values reject
   * the whole batch with a RuntimeFailure naming the sample index within the batch; the state
   * is left unchanged. The arrays must not be modified until the returned promise settles.
   */
  update(features: Float32Array, n: number, labels: Int32Array): Promise<void> {
    return this.enqueue(() => this.apply(features, n, labels));
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op);
    this.inFlight++;
    const done = run.finally(() => {
      this.inFlight--;
    });
    // A failed operation must not block the ones queued after it.
    this.queue = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  private async apply(features: Float32Array, n: number, labels: Int32Array): Promise<void> {
    const { K, d } = this;
    if (features.length !== n * d) throw new Error(`ClassStats.update: ${features.length} values for ${n}×${d}`);
    if (labels.length !== n) throw new Error(`ClassStats.update: ${labels.length} labels for ${n} rows`);
    const bCount = new Float64Array(K);
    const bSum = new Float64Array(K * d);
    for (let i = 0; i < n; i++) {
      const k = labels[i]!;
      checkLabel(k, K, i);
      bCount[k]!++;
      const o = k * d;
      let rowSum = 0;
      for (let j = 0; j < d; j++) {
        const v = features[i * d + j]!;
        bSum[o + j]! += v;
        rowSum += v;
      }
      if (!Number.isFinite(rowSum)) throwNonFinite(features, i, d);
    }
    if (n === 0) return;
    const bMean = new Float64Array(K * d);
    const present: number[] = [];
    for (let k = 0; k < K; k++) {
      if (bCount[k] === 0) continue;
      present.push(k);
      for (let j = 0; j < d; j++) bMean[k * d + j] = bSum[k * d + j]! / bCount[k]!;
    }
    const seenBefore = present.filter((k) => this.n[k]! > 0);
    const rows = this.scatter ? n + seenBefore.length : 0;
    const C = this.momentPrecision === 'float64' ? new Float64Array(rows * d) : new Float32Array(rows * d);
    const bSsw = new Float64Array(K);
    for (let i = 0; i < n; i++) {
      const k = labels[i]!;
      const o = k * d;
      let s = 0;
      for (let j = 0; j < d; j++) {
        const v = features[i * d + j]! - bMean[o + j]!;
        s += v * v;
        if (rows) C[i * d + j] = v;
      }
      bSsw[k]! += s;
    }
    const corr = new Float64Array(K);
    seenBefore.forEach((k, r) => {
      const na = this.n[k]!;
      const nb = bCount[k]!;
      const w = (na * nb) / (na + nb);
      const sw = Math.sqrt(w);
      let dd = 0;
      for (let j = 0; j < d; j++) {
        const delta = bMean[k * d + j]! - this.sums[k * d + j]! / na;
        dd += delta * delta;
        if (rows) C[(n + r) * d + j] = sw * delta;
      }
      corr[k] = w * dd;
    });
    // The Gram is the last fallible step and only adds into the scatter once the product has
    // succeeded; everything after it cannot fail, so a failed batch leaves the state untouched.
    if (rows && this.scatter) await gram(C, rows, d, this.scatter);
    for (const k of present) {
      this.sswK[k]! += bSsw[k]! + corr[k]!;
      this.n[k]! += bCount[k]!;
      for (let j = 0; j < d; j++) this.sums[k * d + j]! += bSum[k * d + j]!;
    }
  }

  /** Resolves when every update issued so far has been applied. */
  async settled(): Promise<void> {
    await this.queue;
  }

  private assertSettled(): void {
    if (this.inFlight > 0) throw new Error('ClassStats read while an update is in flight: await update() first');
  }

  /**
   * Fold another accumulator of the same layer into this one; the result equals one pass over
   * both inputs (up to rounding). The scatter survives only if both sides kept it.
   */
  merge(other: ClassStats): Promise<this> {
    if (other === this) return Promise.reject(new Error('ClassStats.merge: cannot merge an accumulator into itself'));
    if (other.K !== this.K || other.d !== this.d) {
      return Promise.reject(
        new RuntimeFailure(`cannot merge statistics of shape K=${other.K}, d=${other.d} into K=${this.K}, d=${this.d}`),
      );
    }
    return this.enqueue(async () => {
      await other.settled();
      await this.mergeSettled(other);
      return this;
    });
  }

  private async mergeSettled(other: ClassStats): Promise<void> {
    const { K, d } = this;
    const corrSsw = new Float64Array(K);
    const C = new Float64Array(K * d);
    let rows = 0;
    for (let k = 0; k < K; k++) {
      const na = this.n[k]!;
      const nb = other.n[k]!;
      if (na === 0 || nb === 0) continue;
      const w = (na * nb) / (na + nb);
      const sw = Math.sqrt(w);
      let dd = 0;
      for (let j = 0; j < d; j++) {
        const delta = other.sums[k * d + j]! / nb - this.sums[k * d + j]! / na;
        dd += delta * delta;
        C[rows * d + j] = sw * delta;
      }
      rows++;
      corrSsw[k] = w * dd;
    }
    // The correction Gram is the only fallible step: run it before changing anything.
    const G = this.scatter && other.scatter ? await gram(C.subarray(0, rows * d), rows, d) : null;
    if (G && this.scatter && other.scatter) {
      const S = this.scatter;
      for (let i = 0; i < S.length; i++) S[i]! += other.scatter[i]! + G[i]!;
    } else {
      this.scatter = null;
    }
    for (let k = 0; k < K; k++) {
      this.n[k]! += other.n[k]!;
      this.sswK[k]! += other.sswK[k]! + corrSsw[k]!;
    }
    for (let i = 0; i < this.sums.length; i++) this.sums[i]! += other.sums[i]!;
  }

  toJSON(): ClassStatsJSON {
    this.assertSettled();
    let scatter: string | null = null;
    if (this.scatter) {
      const { d } = this;
      const upper = new Float64Array((d * (d + 1)) / 2);
      let p = 0;
      for (let i = 0; i < d; i++) for (let j = i; j < d; j++) upper[p++] = this.scatter[i * d + j]!;
      scatter = encodeF64(upper);
    }
    return {
      format: FORMAT,
      version: 1,
      K: this.K,
      d: this.d,
      maxMomentDim: this.maxMomentDim,
      momentPrecision: this.momentPrecision,
      counts: Array.from(this.n),
      sums: encodeF64(this.sums),
      ssw: Array.from(this.sswK),
      scatter,
    };
  }

  static fromJSON(json: unknown): ClassStats {
    const parsed = jsonSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? issue.path.join('.') || '(root)' : '(root)';
      throw new RuntimeFailure(`not a layerprobe class-stats shard: ${where}: ${issue?.message ?? 'invalid'}`);
    }
    const j = parsed.data;
    if (j.counts.length !== j.K || j.ssw.length !== j.K) {
      throw new RuntimeFailure(`class-stats shard: counts/ssw must have K=${j.K} entries`);
    }
    const s = new ClassStats(j.K, j.d, { maxMomentDim: j.maxMomentDim, momentPrecision: j.momentPrecision });
    s.n.set(j.counts);
    s.sswK.set(j.ssw);
    s.sums.set(decodeF64(j.sums, j.K * j.d, 'sums'));
    const { d } = s;
    if (j.scatter === null) {
      s.scatter = null;
    } else {
      const upper = decodeF64(j.scatter, (d * (d + 1)) / 2, 'scatter');
      const S = new Float64Array(d * d);
      let p = 0;
      for (let i = 0; i < d; i++) {
        for (let k = i; k < d; k++) {
          S[i * d + k] = upper[p]!;
          S[k * d + i] = upper[p]!;
          p++;
        }
      }
      s.scatter = S;
    }
    return s;
  }

  // -------------------------------------------------------------------------------------------
  // Read-outs

  get N(): number {
    let N = 0;
    for (const c of this.n) N += c;
    return N;
  }

  count(k: number): number {
    return this.n[k]!;
  }

  counts(): Float64Array {
    return new Float64Array(this.n);
  }

  /** μ_k (a copy); NaN entries for a class with no samples. */
  mean(k: number): Float64Array {
    const m = new Float64Array(this.d);
    for (let j = 0; j < this.d; j++) m[j] = this.sums[k * this.d + j]! / this.n[k]!;
    return m;
  }

  /** Per-class Σ h (float64, K×d). */
  classSums(): Float64Array {
    return new Float64Array(this.sums);
  }

  /**
   * The moments every metric reads (means of empty classes are 0 and flagged by count 0). The
   * scatter is this accumulator's own matrix, not a copy (d² doubles): treat it as read-only.
   */
  moments(): ClassMoments {
    this.assertSettled();
    const { K, d } = this;
    const means = new Float64Array(K * d);
    for (let k = 0; k < K; k++) {
      if (this.n[k] === 0) continue;
      for (let j = 0; j < d; j++) means[k * d + j] = this.sums[k * d + j]! / this.n[k]!;
    }
    return {
      K,
      d,
      counts: new Float64Array(this.n),
      means,
      ssw: new Float64Array(this.sswK),
      scatter: this.scatter,
    };
  }

  /** μ_G over all samples. */
  globalMean(): Float64Array {
    return momentsGlobalMean(this.moments());
  }

  /** Σ_{i∈k} ‖h_i − μ_k‖². */
  classSsw(k: number): number {
    return this.sswK[k]!;
  }

  /** Var_k = mean ‖h − μ_k‖² (Galanti's CDNV variance). */
  classVariance(k: number): number {
    return momentsClassVariance(this.moments(), k);
  }

  /** Σ_{i∈k} ‖h_i‖², recovered as ssw_k + n_k‖μ_k‖². */
  sumSquaredNorms(k: number): number {
    const nk = this.n[k]!;
    if (nk === 0) return 0;
    let s = 0;
    for (let j = 0; j < this.d; j++) {
      const v = this.sums[k * this.d + j]!;
      s += v * v;
    }
    return this.sswK[k]! + s / nk;
  }

  /** tr(Σ_W), Σ_W divided by the total N. */
  withinTrace(): number {
    this.assertSettled();
    return momentsWithinTrace(this.moments());
  }

  /** tr(Σ_B), Σ_B = (1/K)Σ_k (μ_k − μ_G)(μ_k − μ_G)ᵀ over the classes present. */
  betweenTrace(): number {
    return momentsBetweenTrace(this.moments());
  }

  /** Σ_k Σ_{i∈k} (h_i − μ_k)(h_i − μ_k)ᵀ (d×d copy), or null when d > maxMomentDim. */
  withinScatter(): Float64Array | null {
    this.assertSettled();
    return this.scatter ? new Float64Array(this.scatter) : null;
  }

  /** Σ_W = scatter / N, or null. */
  withinCovariance(): Float64Array | null {
    this.assertSettled();
    return momentsWithinCovariance(this.moments());
  }

  /** Σ_i h_i h_iᵀ = scatter + Σ_k n_k μ_k μ_kᵀ (d×d), or null. */
  secondMoment(): Float64Array | null {
    const S = this.withinScatter();
    if (!S) return null;
    const { d } = this;
    for (let k = 0; k < this.K; k++) {
      const nk = this.n[k]!;
      if (nk === 0) continue;
      for (let a = 0; a < d; a++) {
        const sa = this.sums[k * d + a]! / nk;
        if (sa === 0) continue;
        for (let b = 0; b < d; b++) S[a * d + b]! += sa * this.sums[k * d + b]!;
      }
    }
    return S;
  }
}
