/**
 * The second streaming pass: statistics that need the final class means before they can be exact
 * over all N images at any width (ARCHITECTURE: "a metric that needs the class means before it
 * can be exact at any width may take one more streaming pass, and says so").
 *
 * With the means μ_k of the first pass and R = M̃ᵀ (rows μ̃_k = μ_k − μ_G of the present classes,
 * K'×d), each row h of class y contributes
 *   z = R (h − μ_y)          → A = Σ z zᵀ / N = R Σ_W Rᵀ   (K'×K'; all NC1 needs of Σ_W)
 *   argmin_k ‖h − μ_k‖²      → compared with the model's prediction (NC4 over all N)
 * Both come from one float64 product P = (H − μ_G) Rᵀ (n×d×K' work, no d×d matrix):
 * z = P_i − (R Rᵀ)[y_i] and ‖h − μ_k‖² − ‖h − μ_G‖² = ‖μ̃_k‖² − 2 P_ik. Memory: K'² + K'·d
 * doubles per layer, whatever N and d. Accumulators of shards merge by addition.
 */
import { RuntimeFailure } from '../errors.js';
import { matmul } from '../linalg/ort-ops.js';
import { centredMeans, globalMean, type ClassMoments } from './moments.js';

export interface MeanPassResult {
  /** Present classes, in the order of A's rows. */
  classes: number[];
  /** R Σ_W Rᵀ (K'×K', row-major), Σ_W over the rows seen. */
  withinOnMeans: Float64Array;
  /** Rows seen in this pass. */
  n: number;
  /** Rows whose nearest class mean differs from the prediction, and rows that had a prediction. */
  nc4Mismatches: number;
  nc4Rows: number;
}

/** A second-pass accumulator as stored in a statistics shard (A = Σ z zᵀ unnormalised, base64 float64 LE). */
export interface MeanPassJSON {
  classes: number[];
  withinOnMeans: string;
  rows: number;
  nc4Mismatches: number;
  nc4Rows: number;
}

export class MeanPassStats {
  readonly d: number;
  private readonly classes: number[];
  private readonly row: Int32Array;
  private readonly R: Float64Array;
  private readonly Rt: Float64Array;
  private readonly RRt: Float64Array;
  private readonly g: Float64Array;
  private readonly A: Float64Array;
  private rows = 0;
  private mismatches = 0;
  private predicted = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(moments: ClassMoments) {
    const { classes, rows } = centredMeans(moments);
    const K = classes.length;
    const d = moments.d;
    this.d = d;
    this.classes = classes;
    this.row = new Int32Array(moments.K).fill(-1);
    classes.forEach((k, r) => (this.row[k] = r));
    this.R = rows;
    this.Rt = new Float64Array(d * K);
    for (let r = 0; r < K; r++) for (let j = 0; j < d; j++) this.Rt[j * K + r] = rows[r * d + j]!;
    this.RRt = new Float64Array(K * K);
    for (let a = 0; a < K; a++) {
      for (let b = 0; b < K; b++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += rows[a * d + j]! * rows[b * d + j]!;
        this.RRt[a * K + b] = s;
      }
    }
    this.g = globalMean(moments);
    this.A = new Float64Array(K * K);
  }

  /** Add n rows (n×d) with their labels and, when known, the model's predictions. */
  update(X: Float32Array | Float64Array, n: number, labels: Int32Array, predictions?: Int32Array): Promise<void> {
    const run = this.queue.then(() => this.apply(X, n, labels, predictions));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async apply(X: Float32Array | Float64Array, n: number, labels: Int32Array, predictions?: Int32Array): Promise<void> {
    const { d, g } = this;
    const K = this.classes.length;
    if (n === 0 || K === 0) return;
    if (X.length !== n * d) throw new Error(`MeanPassStats.update: ${X.length} values for ${n}×${d}`);
    const Hc = new Float64Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) Hc[i * d + j] = X[i * d + j]! - g[j]!;
    const P = await matmul(Hc, this.Rt, n, d, K);
    const z = new Float64Array(K);
    for (let i = 0; i < n; i++) {
      const y = this.row[labels[i]!] ?? -1;
      if (y < 0) throw new RuntimeFailure(`second pass: label ${labels[i]} has no samples in the first pass (the two passes saw different data)`);
      for (let a = 0; a < K; a++) z[a] = P[i * K + a]! - this.RRt[y * K + a]!;
      for (let a = 0; a < K; a++) {
        const za = z[a]!;
        if (za === 0) continue;
        for (let b = 0; b < K; b++) this.A[a * K + b]! += za * z[b]!;
      }
      if (predictions) {
        let best = Infinity;
        let arg = -1;
        for (let r = 0; r < K; r++) {
          const v = this.RRt[r * K + r]! - 2 * P[i * K + r]!;
          if (v < best) {
            best = v;
            arg = this.classes[r]!;
          }
        }
        this.predicted++;
        if (arg !== predictions[i]) this.mismatches++;
      }
    }
    this.rows += n;
  }

  /** Fold a shard's accumulator (same first-pass means) into this one. */
  merge(other: MeanPassStats): void {
    if (other.A.length !== this.A.length || other.d !== this.d) throw new RuntimeFailure('second-pass statistics of different layers cannot be merged');
    for (let i = 0; i < this.A.length; i++) this.A[i]! += other.A[i]!;
    this.rows += other.rows;
    this.mismatches += other.mismatches;
    this.predicted += other.predicted;
  }

  async settled(): Promise<void> {
    await this.queue;
  }

  result(): MeanPassResult {
    const n = this.rows;
    return {
      classes: [...this.classes],
      withinOnMeans: this.A.map((v) => (n > 0 ? v / n : NaN)),
      n,
      nc4Mismatches: this.mismatches,
      nc4Rows: this.predicted,
    };
  }

  /**
   * The accumulators of this pass (a shard's part), for a statistics shard file. The projection
   * itself is not stored: it is rebuilt from the same first-pass moments (the means file).
   */
  toJSON(): MeanPassJSON {
    const bytes = Buffer.alloc(this.A.length * 8);
    this.A.forEach((v, i) => bytes.writeDoubleLE(v, i * 8));
    return { classes: [...this.classes], withinOnMeans: bytes.toString('base64'), rows: this.rows, nc4Mismatches: this.mismatches, nc4Rows: this.predicted };
  }

  /** A shard's accumulators on the projection of `moments`; refuses ones made on other class means. */
  static fromJSON(moments: ClassMoments, json: MeanPassJSON): MeanPassStats {
    const s = new MeanPassStats(moments);
    const K = s.classes.length;
    const bytes = Buffer.from(json.withinOnMeans, 'base64');
    if (json.classes.length !== K || json.classes.some((k, i) => k !== s.classes[i]) || bytes.length !== K * K * 8) {
      throw new RuntimeFailure(`second-pass statistics of classes [${json.classes.join(',')}] (${bytes.length / 8} values) do not fit the first pass's ${K} classes`);
    }
    for (let i = 0; i < K * K; i++) s.A[i] = bytes.readDoubleLE(i * 8);
    s.rows = json.rows;
    s.mismatches = json.nc4Mismatches;
    s.predicted = json.nc4Rows;
    return s;
  }

  /** The centred-mean rows R (K'×d) this pass projects on. */
  centredMeanRows(): Float64Array {
    return this.R;
  }
}
