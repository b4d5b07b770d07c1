import { open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { sha256Bytes } from './hash.js';
import { checkLabels, defaultClassNames, memoryDataset, narrowLabels } from './memory.js';
import type { Dataset } from './types.js';

/** Format reference: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

export type NpyDtype = 'uint8' | 'float32' | 'int32' | 'int64' | 'float64';
export type NpyData = Uint8Array | Float32Array | Int32Array | BigInt64Array | Float64Array;

export interface NpyArray {
  shape: number[];
  dtype: NpyDtype;
  data: NpyData;
}

const DESCR: Record<string, { dtype: NpyDtype; size: number }> = {
  '|u1': { dtype: 'uint8', size: 1 },
  '<u1': { dtype: 'uint8', size: 1 },
  'u1': { dtype: 'uint8', size: 1 },
  '<f4': { dtype: 'float32', size: 4 },
  '<i4': { dtype: 'int32', size: 4 },
  '<i8': { dtype: 'int64', size: 8 },
  '<f8': { dtype: 'float64', size: 8 },
};

function littleEndianHost(): void {
  // Typed arrays use host byte order and .npy files here are little-endian; every platform
  // Node supports today is LE, so a BE host is refused rather than silently byte-swapped.
  if (endianness() !== 'LE') throw new RuntimeFailure('.npy support needs a little-endian host');
}

export async function readNpy(path: string): Promise<NpyArray> {
  return (await readNpyFile(path)).array;
}

async function readNpyFile(path: string): Promise<{ array: NpyArray; sha256: string; bytes: number }> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') throw new UsageError(`.npy file ${path} not found`);
    throw new RuntimeFailure(`cannot read ${path}: ${errorMessage(e)}`);
  }
  return { array: parseNpy(buf, path), sha256: sha256Bytes(buf), bytes: buf.length };
}

/** Parses .npy bytes (format v1, v2 or v3; little-endian; C order); `path` names the file in errors. */
export function parseNpy(buf: Uint8Array, path: string): NpyArray {
  littleEndianHost();
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) {
    throw new RuntimeFailure(`${path} is not a .npy file (bad magic string)`);
  }
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new RuntimeFailure(`${path} is truncated inside its .npy header`);
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new RuntimeFailure(`${path}: unsupported .npy format version ${major}.${buf[7]}`);
  }
  const dataStart = headerStart + headerLen;
  if (buf.length < dataStart) throw new RuntimeFailure(`${path} is truncated inside its .npy header`);
  const header = Buffer.from(buf.buffer, buf.byteOffset + headerStart, headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortran, shape } = parseHeader(header, path);
  if (fortran) {
    throw new RuntimeFailure(`${path} is stored in Fortran order, which is not supported`,
      'save it in C order, e.g. np.save(path, np.ascontiguousarray(a))');
  }
  const kind = DESCR[descr];
  if (!kind) {
    const hint = descr.startsWith('>') ? 'big-endian arrays are not supported; convert with a.astype(a.dtype.newbyteorder("<"))' : 'supported: uint8, int32, int64, float32, float64';
    throw new RuntimeFailure(`${path}: unsupported dtype '${descr}'`, hint);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * kind.size;
  const actual = buf.length - dataStart;
  if (actual !== expected) {
    throw new RuntimeFailure(
      `${path} ${actual < expected ? 'is truncated' : 'has trailing bytes'}: shape (${shape.join(', ')}) of ${kind.dtype} needs ${expected} data bytes, found ${actual}`,
    );
  }
  // Typed-array views must be aligned to the item size; copy when the file offset is not.
  const offset = buf.byteOffset + dataStart;
  const aligned = offset % kind.size === 0;
  // (Buffer#slice is a view of the same memory; ArrayBuffer#slice copies.)
  const ab = aligned ? buf.buffer : buf.buffer.slice(offset, offset + expected);
  const at = aligned ? offset : 0;
  return { shape, dtype: kind.dtype, data: typedView(kind.dtype, ab, at, count) };
}

function typedView(dtype: NpyDtype, buffer: ArrayBufferLike, offset: number, count: number): NpyData {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(buffer, offset, count);
    case 'float32':
      return new Float32Array(buffer, offset, count);
    case 'int32':
      return new Int32Array(buffer, offset, count);
    case 'int64':
      return new BigInt64Array(buffer, offset, count);
    case 'float64':
      return new Float64Array(buffer, offset, count);
  }
}

/** The header is a Python dict literal; these three keys are all the format defines. */
function parseHeader(header: string, path: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new RuntimeFailure(`${path}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const t = part.trim().replace(/L$/, '');
    if (t === '') continue;
    if (!/^\d+$/.test(t)) throw new RuntimeFailure(`${path}: bad shape (${shapeText}) in .npy header`);
    shape.push(Number(t));
  }
  return { descr, fortran: fortran === 'True', shape };
}

/** The header numpy itself would write: v1, space-padded so the data starts on a 64-byte boundary. */
export function npyHeader(shape: readonly number[], dtype: 'float32' | 'int32' | 'uint8' | 'float64' | 'int64'): Buffer {
  const descr = { float32: '<f4', int32: '<i4', uint8: '|u1', float64: '<f8', int64: '<i8' }[dtype];
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const fixed = MAGIC.length + 2 + 2;
  const pad = ALIGN - ((fixed + dict.length + 1) % ALIGN);
  dict += ' '.repeat(pad % ALIGN) + '\n';
  if (dict.length > 0xffff) throw new UsageError(`shape (${shape.join(', ')}) is too long for a .npy v1 header`);
  const out = Buffer.alloc(fixed + dict.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(dict.length, 8);
  out.write(dict, fixed, 'latin1');
  return out;
}

/**
 * Writes an array whose shape is known up front chunk by chunk, so activations of any size
 * stream to disk. close() checks that exactly prod(shape) elements arrived; a short or long
 * file would be a valid-looking .npy with wrong data, so it is deleted instead.
 */
export class NpyWriter {
  private written = 0;
  private position: number;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly path: string,
    readonly shape: readonly number[],
    readonly dtype: 'float32' | 'int32',
    private readonly fh: FileHandle,
    headerBytes: number,
    readonly total: number,
  ) {
    this.position = headerBytes;
  }

  static async create(path: string, shape: number[], dtype: 'float32' | 'int32'): Promise<NpyWriter> {
    littleEndianHost();
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new UsageError(`.npy shape must be non-negative integers, got (${shape.join(', ')})`);
    }
    const header = npyHeader(shape, dtype);
    let fh: FileHandle;
    try {
      fh = await open(path, 'w');
      await fh.write(header, 0, header.length, 0);
    } catch (e) {
      throw new RuntimeFailure(`cannot write ${path}: ${errorMessage(e)}`);
    }
    return new NpyWriter(path, [...shape], dtype, fh, header.length, shape.reduce((a, b) => a * b, 1));
  }

  get elementsWritten(): number {
    return this.written;
  }

  write(chunk: Float32Array | Int32Array): Promise<void> {
    if (this.closed) return Promise.reject(new RuntimeFailure(`${this.path}: write after close`));
    const expected = this.dtype === 'float32' ? Float32Array : Int32Array;
    if (!(chunk instanceof expected)) {
      return Promise.reject(new RuntimeFailure(`${this.path}: ${chunk.constructor.name} written to a ${this.dtype} .npy`));
    }
    if (this.written + chunk.length > this.total) {
      return Promise.reject(new RuntimeFailure(
        `${this.path}: writing ${chunk.length} more elements would exceed the ${this.total} declared by shape (${this.shape.join(', ')})`,
      ));
    }
    // Positions are claimed synchronously so that unawaited writes still land in call order.
    const at = this.position;
    this.position += chunk.byteLength;
    this.written += chunk.length;
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const job = this.queue.then(() => this.fh.write(bytes, 0, bytes.length, at));
    this.queue = job.catch(() => undefined);
    return job.then(
      () => undefined,
      (e: unknown) => {
        throw new RuntimeFailure(`cannot write ${this.path}: ${errorMessage(e)}`);
      },
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.fh.close();
    if (this.written !== this.total) {
      await unlink(this.path).catch(() => undefined);
      throw new RuntimeFailure(
        `${this.path}: ${this.written} elements written but shape (${this.shape.join(', ')}) declares ${this.total}; the incomplete file was removed`,
      );
    }
  }

  /** Gives up on the file (e.g. after an interrupted run) and removes it. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.queue;
      await this.fh.close();
    }
    await unlink(this.path).catch(() => undefined);
  }
}

export interface NpyDatasetOptions {
  classes?: readonly string[];
  name?: string;
}

/** images [N,H,W] or [N,H,W,C] (uint8 or float32) with integer labels [N]. */
export async function openNpyDataset(imagesPath: string, labelsPath: string, opts: NpyDatasetOptions = {}): Promise<Dataset> {
  const [images, labels] = await Promise.all([readNpyFile(imagesPath), readNpyFile(labelsPath)]);
  const { shape, dtype } = images.array;
  if (shape.length !== 3 && shape.length !== 4) {
    throw new RuntimeFailure(`${imagesPath}: expected images of shape (N, H, W) or (N, H, W, C), found (${shape.join(', ')})`);
  }
  if (dtype !== 'uint8' && dtype !== 'float32') {
    throw new RuntimeFailure(`${imagesPath}: images must be uint8 or float32, found ${dtype}`);
  }
  const l = labels.array;
  if (l.shape.length !== 1 || l.dtype === 'float32' || l.dtype === 'float64') {
    throw new RuntimeFailure(`${labelsPath}: expected 1-D integer labels, found ${l.dtype} (${l.shape.join(', ')})`);
  }
  if (l.shape[0] !== shape[0]) {
    throw new RuntimeFailure(
      `image/label count mismatch: ${imagesPath} has ${shape[0]} images but ${labelsPath} has ${l.shape[0]} labels`,
    );
  }
  const labelArray = narrowLabels(l.data, labelsPath);
  const classes = opts.classes ?? defaultClassNames(labelArray, labelsPath);
  checkLabels(labelArray, classes, labelsPath);
  return memoryDataset({
    name: opts.name ?? imagesPath,
    classes,
    labels: labelArray,
    itemShape: [shape[1]!, shape[2]!, shape[3] ?? 1],
    pixels: images.array.data as Uint8Array | Float32Array,
    source: {
      kind: 'npy',
      files: [
        { path: imagesPath, sha256: images.sha256, bytes: images.bytes },
        { path: labelsPath, sha256: labels.sha256, bytes: labels.bytes },
      ],
      detail: { dtype },
    },
  });
}
