import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { sha256Bytes } from './hash.js';
import { gunzipCapped } from './gzip.js';
import { checkLabels, defaultClassNames, memoryDataset, narrowLabels, type PixelArray } from './memory.js';
import type { Dataset } from './types.js';

export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

export interface IdxArray {
  dims: number[];
  type: IdxType;
  data: PixelArray;
}

/** IDX type codes (third magic byte) as defined on Yann LeCun's MNIST page. */
const TYPE_CODES: Record<number, { type: IdxType; size: number }> = {
  0x08: { type: 'uint8', size: 1 },
  0x09: { type: 'int8', size: 1 },
  0x0b: { type: 'int16', size: 2 },
  0x0c: { type: 'int32', size: 4 },
  0x0d: { type: 'float32', size: 4 },
  0x0e: { type: 'float64', size: 8 },
};

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The file's own bytes (for hashing) and its IDX content (gunzipped when the magic says gzip). */
interface IdxFile {
  idx: IdxArray;
  sha256: string;
  /** sha256 of the uncompressed IDX bytes: the same data re-gzipped (as Debian does) keeps it. */
  contentSha256: string;
  bytes: number;
}

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
      throw new UsageError(`IDX file ${path} not found (${code})`);
    }
    throw new RuntimeFailure(`cannot read IDX file ${path}: ${errorMessage(e)}`);
  }
}

async function readIdxFile(path: string): Promise<IdxFile> {
  const file = await readBytes(path);
  // Inflation stops at the size the IDX header inside declares: a gzip bomb fails at once.
  const content: Uint8Array = isGzip(file) ? await gunzipCapped(file, `IDX file ${path}`, idxDeclaredSize) : file;
  const sha256 = sha256Bytes(file);
  const contentSha256 = content === file ? sha256 : sha256Bytes(content);
  return { idx: parseIdx(content, path), sha256, contentSha256, bytes: file.length };
}

/**
 * Total bytes (header + data) an IDX file declares in its header, read off its first bytes:
 * 'more' until the whole header is there, 'invalid' when these bytes are not an IDX header.
 */
export function idxDeclaredSize(head: Uint8Array): number | 'more' | 'invalid' {
  if (head.length < 4) return 'more';
  const code = TYPE_CODES[head[2]!];
  if (head[0] !== 0 || head[1] !== 0 || !code || head[3] === 0) return 'invalid';
  const headerBytes = 4 + 4 * head[3]!;
  if (head.length < headerBytes) return 'more';
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let bytes = code.size;
  for (let i = 0; i < head[3]!; i++) bytes *= view.getUint32(4 + 4 * i, false);
  return headerBytes + bytes;
}

/** Reads an IDX file, raw or gzipped (detected by the 1f8b magic, not the extension). */
export async function readIdx(path: string): Promise<IdxArray> {
  return (await readIdxFile(path)).idx;
}

/** Parses uncompressed IDX bytes; `path` only names the file in errors. */
export function parseIdx(bytes: Uint8Array, path: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    const got = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new RuntimeFailure(`${path} is not an IDX file: magic number starts with ${got || '(empty file)'}, expected 00 00`);
  }
  const code = TYPE_CODES[bytes[2]!];
  if (!code) {
    throw new RuntimeFailure(`${path}: unknown IDX data type code 0x${bytes[2]!.toString(16).padStart(2, '0')}`);
  }
  const ndims = bytes[3]!;
  if (ndims === 0) throw new RuntimeFailure(`${path}: IDX header declares zero dimensions`);
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new RuntimeFailure(`${path} is truncated: ${bytes.length} bytes, shorter than its ${headerBytes}-byte IDX header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const expected = count * code.size;
  const actual = bytes.length - headerBytes;
  if (actual !== expected) {
    const what = actual < expected ? 'is truncated' : 'has trailing bytes';
    throw new RuntimeFailure(
      `${path} ${what}: dims ${fmtDims(dims)} of ${code.type} need ${expected} data bytes, found ${actual}`,
      actual < expected ? 'the download was probably cut short; fetch the file again' : undefined,
    );
  }
  return { dims, type: code.type, data: decode(view, headerBytes, count, code.type, bytes) };
}

/** Dimensions for a message: a corrupt header can declare up to 255 of them. */
function fmtDims(dims: readonly number[]): string {
  return dims.length <= 8 ? `[${dims.join(', ')}]` : `[${dims.slice(0, 6).join(', ')}, … ${dims.length} dimensions]`;
}

/** IDX stores multi-byte values big-endian, so everything wider than a byte is converted. */
function decode(view: DataView, offset: number, count: number, type: IdxType, bytes: Uint8Array): PixelArray {
  switch (type) {
    case 'uint8':
      return bytes.subarray(offset, offset + count);
    case 'int8':
      return new Int8Array(bytes.buffer, bytes.byteOffset + offset, count);
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

export interface IdxDatasetOptions {
  images: string;
  labels: string;
  name: string;
  classes?: readonly string[];
  /** Source kind for the manifest; 'idx' unless a registry dataset is being opened. */
  kind?: string;
  detail?: Record<string, string | number | boolean>;
}

/** Opens an images/labels IDX pair; pixels stay in memory in their stored type. */
export async function openIdxDataset(opts: IdxDatasetOptions): Promise<Dataset> {
  const [images, labels] = await Promise.all([readIdxFile(opts.images), readIdxFile(opts.labels)]);
  const dims = images.idx.dims;
  if (dims.length !== 3 && dims.length !== 4) {
    throw new RuntimeFailure(
      `${opts.images}: expected images of shape [N, H, W] or [N, H, W, C], found ${fmtDims(dims)}`,
    );
  }
  if (labels.idx.dims.length !== 1 || !isIntegerType(labels.idx.type)) {
    throw new RuntimeFailure(
      `${opts.labels}: expected a 1-D integer labels file, found ${labels.idx.type} ${fmtDims(labels.idx.dims)}`,
    );
  }
  const n = dims[0]!;
  const nLabels = labels.idx.dims[0]!;
  if (n !== nLabels) {
    throw new RuntimeFailure(
      `image/label count mismatch: ${basename(opts.images)} has ${n} images but ${basename(opts.labels)} has ${nLabels} labels`,
      `check that ${opts.images} and ${opts.labels} belong to the same split`,
    );
  }
  const labelArray = narrowLabels(labels.idx.data, opts.labels);
  const classes = opts.classes ?? defaultClassNames(labelArray, opts.labels);
  checkLabels(labelArray, classes, opts.labels);
  return memoryDataset({
    name: opts.name,
    classes,
    labels: labelArray,
    itemShape: [dims[1]!, dims[2]!, dims[3] ?? 1],
    pixels: images.idx.data,
    source: {
      kind: opts.kind ?? 'idx',
      files: [
        { path: opts.images, sha256: images.sha256, bytes: images.bytes },
        { path: opts.labels, sha256: labels.sha256, bytes: labels.bytes },
      ],
      detail: {
        dtype: images.idx.type,
        imagesContentSha256: images.contentSha256,
        labelsContentSha256: labels.contentSha256,
        ...opts.detail,
      },
    },
  });
}

function isIntegerType(t: IdxType): boolean {
  return t === 'uint8' || t === 'int8' || t === 'int16' || t === 'int32';
}
