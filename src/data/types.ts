/**
 * Datasets hand out raw items; preprocessing (per model) turns them into model input.
 * Raw items are float32 in the file's own value range (0..255 for 8-bit images), laid out
 * HWC, one fixed shape per dataset.
 */
export interface DatasetSourceInfo {
  /** 'idx' | 'image-folder' | 'csv' | 'npy' | registry name … */
  kind: string;
  /** Files read, with their sha256 (for the manifest). */
  files: { path: string; sha256: string; bytes: number }[];
  /** Free-form details (split, layout declared for CSV, …). */
  detail?: Record<string, string | number | boolean>;
}

export interface RawBatch {
  /** n·H·W·C values, HWC per item. */
  x: Float32Array;
  shape: [n: number, h: number, w: number, c: number];
  labels: Int32Array;
  /** Dataset indices of the items in this batch. */
  indices: Int32Array;
}

export interface Dataset {
  readonly name: string;
  /** Class names in label order (label k ⇔ classes[k]). */
  readonly classes: readonly string[];
  /** One label per item, all known up front so that sampling needs no decoding. */
  readonly labels: Int32Array;
  /** [H, W, C] of every raw item. */
  readonly itemShape: readonly [number, number, number];
  readonly source: DatasetSourceInfo;
  /**
   * The largest raw value any item can hold: 255 for 8-bit images, the data's own maximum for
   * numeric files. It decides the default pixel scale (÷255, or ÷1 for data already in [0,1]).
   */
  readonly maxValue: number;
  /** Decode the given items (any order); memory is proportional to indices.length only. */
  read(indices: ArrayLike<number>): Promise<RawBatch>;
}

/** How a model wants its input; declared per model and recorded in the manifest. */
export interface PreprocessSpec {
  /** Resize every item to [H, W] (bilinear). */
  size?: [number, number];
  /** Convert to 1 (luma) or 3 (replicate grey) channels. */
  channels?: 1 | 3;
  /** Divide raw values by this (255 maps 8-bit pixels to [0,1]). Default 1. */
  scale?: number;
  /** Per-channel mean and std applied after scaling: (x/scale − mean)/std. */
  mean?: number[];
  std?: number[];
  /** Memory layout of the model input. Default NHWC. */
  layout?: 'NCHW' | 'NHWC';
  /** Replace the per-item shape after layout (e.g. [784] or [784, 1]); element count must match. */
  reshape?: number[];
}

export interface ModelInput {
  data: Float32Array;
  /** [n, ...per-item shape]. */
  shape: number[];
}
