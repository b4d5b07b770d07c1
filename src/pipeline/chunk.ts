/**
 * Gathers rows from small model batches into larger chunks before a statistics update: each
 * update costs a fixed overhead (an onnxruntime call, the d×d accumulation) that dwarfs the
 * product itself at batch sizes of 64, so fewer, larger updates are several times faster.
 * Memory: one chunk of rows × d per layer.
 */
export class RowChunker {
  private readonly X: Float32Array;
  private readonly labels: Int32Array;
  private filled = 0;

  constructor(
    private readonly d: number,
    private readonly rows: number,
    private readonly flush: (X: Float32Array, n: number, labels: Int32Array) => Promise<void>,
  ) {
    this.X = new Float32Array(d * rows);
    this.labels = new Int32Array(rows);
  }

  async push(X: Float32Array, n: number, labels: Int32Array): Promise<void> {
    let offset = 0;
    while (offset < n) {
      const take = Math.min(n - offset, this.rows - this.filled);
      this.X.set(X.subarray(offset * this.d, (offset + take) * this.d), this.filled * this.d);
      this.labels.set(labels.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.rows) await this.drain();
    }
  }

  async finish(): Promise<void> {
    if (this.filled > 0) await this.drain();
  }

  private async drain(): Promise<void> {
    const n = this.filled;
    // Views, not copies: the statistics may read them asynchronously, but the buffers are only
    // refilled after `flush` settles.
    await this.flush(this.X.subarray(0, n * this.d), n, this.labels.subarray(0, n));
    this.filled = 0;
  }
}
