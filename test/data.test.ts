import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, readdir, symlink, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import { openCsvDataset } from '../src/data/csv.js';
import { sha256File } from '../src/data/hash.js';
import { openIdxDataset, readIdx } from '../src/data/idx.js';
import { NpyWriter, openNpyDataset, readNpy, type NpyData } from '../src/data/npy.js';
import { listKnownDatasets, openDataset } from '../src/data/open.js';

const SHARED = resolve(import.meta.dirname, '../../shared/assets/data');
const MNIST_DIR = join(SHARED, 'mnist');
const ERAN_DIR = join(SHARED, 'eran');
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const hasMnist = existsSync(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
const hasEran = existsSync(join(ERAN_DIR, 'mnist_test.csv'));
const hasFashion = existsSync(join(FASHION_DIR, 't10k-images-idx3-ubyte.gz'));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'layerprobe-data-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Independent IDX encoder: magic 00 00 type ndims, big-endian u32 dims, big-endian data. */
function idxBytes(code: number, dims: number[], values: number[]): Buffer {
  const size = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 }[code]!;
  const buf = Buffer.alloc(4 + 4 * dims.length + values.length * size);
  buf[2] = code;
  buf[3] = dims.length;
  dims.forEach((d, i) => buf.writeUInt32BE(d, 4 + 4 * i));
  const o = 4 + 4 * dims.length;
  values.forEach((v, i) => {
    if (code === 0x08) buf.writeUInt8(v, o + i);
    else if (code === 0x09) buf.writeInt8(v, o + i);
    else if (code === 0x0b) buf.writeInt16BE(v, o + 2 * i);
    else if (code === 0x0c) buf.writeInt32BE(v, o + 4 * i);
    else if (code === 0x0d) buf.writeFloatBE(v, o + 4 * i);
    else buf.writeDoubleBE(v, o + 8 * i);
  });
  return buf;
}

async function put(name: string, data: string | Uint8Array): Promise<string> {
  const p = join(dir, name);
  await mkdir(join(p, '..'), { recursive: true });
  await writeFile(p, data);
  return p;
}

/** NpyData may be a BigInt64Array, which Array.from's number overloads do not take. */
const list = (d: NpyData): (number | bigint)[] => [...(d as Iterable<number | bigint>)];
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Writes a 3-item 2x3 uint8 IDX pair; pixel value of item k at (y, x) is 10k + 3y + x. */
async function smallIdxPair(prefix: string, gz: boolean, labels = [2, 0, 1]) {
  const pixels: number[] = [];
  for (let k = 0; k < 3; k++) for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) pixels.push(10 * k + 3 * y + x);
  const img = idxBytes(0x08, [3, 2, 3], pixels);
  const lab = idxBytes(0x08, [labels.length], labels);
  const ext = gz ? '.gz' : '';
  const images = await put(`${prefix}-images-idx3-ubyte${ext}`, gz ? gzipSync(img) : img);
  const labelsPath = await put(`${prefix}-labels-idx1-ubyte${ext}`, gz ? gzipSync(lab) : lab);
  return { images, labels: labelsPath, pixels };
}

async function rejectsWith(p: Promise<unknown>, type: typeof UsageError | typeof RuntimeFailure, ...needles: (string | RegExp)[]) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    for (const n of needles) {
      if (typeof n === 'string') assert.ok(e.message.includes(n), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(n)}`);
      else assert.match(e.message, n);
    }
    return true;
  });
}

function npyRaw(dict: string, data: Uint8Array, version = 1): Buffer {
  const pre = version === 1 ? 10 : 12;
  const pad = 64 - ((pre + dict.length + 1) % 64);
  const h = dict + ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(pre);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  if (version === 1) head.writeUInt16LE(h.length, 8);
  else head.writeUInt32LE(h.length, 8);
  return Buffer.concat([head, Buffer.from(h, 'latin1'), data]);
}

describe('hash', () => {
  test('sha256File matches the FIPS 180 test vector for "abc"', async () => {
    const p = await put('abc.txt', 'abc');
    assert.equal(await sha256File(p), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('idx', () => {
  test('reads every IDX dtype big-endian, raw and gzipped (gzip found by magic, not name)', async () => {
    const cases: [number, string, number[]][] = [
      [0x08, 'uint8', [0, 7, 255, 128]],
      [0x09, 'int8', [-128, -1, 0, 127]],
      [0x0b, 'int16', [-32768, -2, 300, 32767]],
      [0x0c, 'int32', [-2147483648, -5, 70000, 2147483647]],
      [0x0d, 'float32', [-1.5, 0, 0.25, 2 ** 40 + 2 ** 20]],
      [0x0e, 'float64', [-1e-300, Math.PI, 0, 1e300]],
    ];
    for (const [code, type, values] of cases) {
      const raw = idxBytes(code, [2, 2], values);
      const a = await readIdx(await put(`t-${type}.idx`, raw));
      // gzipped bytes under a name without .gz: detection must use the 1f8b magic.
      const b = await readIdx(await put(`t-${type}-gz.bin`, gzipSync(raw)));
      for (const r of [a, b]) {
        assert.equal(r.type, type);
        assert.deepEqual(r.dims, [2, 2]);
        assert.deepEqual(Array.from(r.data), values);
      }
    }
  });

  test('truncated raw IDX → RuntimeFailure naming the file and the byte counts', async () => {
    const raw = idxBytes(0x08, [4, 5, 5], new Array(100).fill(1));
    const p = await put('trunc-images-idx3-ubyte', raw.subarray(0, raw.length - 7));
    await rejectsWith(readIdx(p), RuntimeFailure, p, 'truncated', '100', '93');
  });

  test('truncated .gz IDX → RuntimeFailure naming the file', async () => {
    const gz = gzipSync(idxBytes(0x08, [50, 10, 10], new Array(5000).fill(0).map((_, i) => i % 251)));
    const p = await put('cut-images-idx3-ubyte.gz', gz.subarray(0, Math.floor(gz.length / 2)));
    await rejectsWith(readIdx(p), RuntimeFailure, p);
  });

  test('corrupt gzip body → RuntimeFailure', async () => {
    const gz = Buffer.from(gzipSync(idxBytes(0x08, [50, 10, 10], new Array(5000).fill(0).map((_, i) => (i * 7) % 256))));
    for (let i = 20; i < 60; i++) gz[i] = gz[i]! ^ 0xff;
    const p = await put('corrupt-images-idx3-ubyte.gz', gz);
    await rejectsWith(readIdx(p), RuntimeFailure, p);
  });

  test('wrong magic and unknown type code → RuntimeFailure', async () => {
    const bad = idxBytes(0x08, [2], [1, 2]);
    bad[0] = 0x42;
    await rejectsWith(readIdx(await put('magic.idx', bad)), RuntimeFailure, 'magic.idx', 'magic');
    const code = idxBytes(0x08, [2], [1, 2]);
    code[2] = 0x07;
    await rejectsWith(readIdx(await put('code.idx', code)), RuntimeFailure, 'code.idx', '0x07');
  });

  test('openIdxDataset reads float HWC items in any order, with labels and hashed sources', async () => {
    const { images, labels, pixels } = await smallIdxPair('small', true);
    const ds = await openIdxDataset({ images, labels, name: 'small', classes: ['a', 'b', 'c'] });
    assert.deepEqual(ds.itemShape, [2, 3, 1]);
    assert.deepEqual(Array.from(ds.labels), [2, 0, 1]);
    const batch = await ds.read([2, 0]);
    assert.deepEqual(batch.shape, [2, 2, 3, 1]);
    assert.ok(batch.x instanceof Float32Array);
    assert.deepEqual(Array.from(batch.x), [...pixels.slice(12, 18), ...pixels.slice(0, 6)]);
    assert.deepEqual(Array.from(batch.labels), [1, 2]);
    assert.deepEqual(Array.from(batch.indices), [2, 0]);
    assert.equal(ds.source.kind, 'idx');
    assert.deepEqual(ds.source.files.map((f) => f.sha256), [sha(await readFile(images)), sha(await readFile(labels))]);
    assert.deepEqual(ds.source.files.map((f) => f.bytes), [(await readFile(images)).length, (await readFile(labels)).length]);
    await rejectsWith(ds.read([3]), UsageError, 'out of range');
  });

  test('4-D images [N,H,W,C] keep their channels', async () => {
    const vals = Array.from({ length: 2 * 2 * 2 * 3 }, (_, i) => i);
    const images = await put('rgb-images-idx3-ubyte', idxBytes(0x08, [2, 2, 2, 3], vals));
    const labels = await put('rgb-labels-idx1-ubyte', idxBytes(0x08, [2], [0, 1]));
    const ds = await openIdxDataset({ images, labels, name: 'rgb' });
    assert.deepEqual(ds.itemShape, [2, 2, 3]);
    assert.deepEqual(ds.classes, ['0', '1']);
    assert.deepEqual(Array.from((await ds.read([1])).x), vals.slice(12));
  });

  test('image/label count mismatch names both files and both counts', async () => {
    const { images, labels } = await smallIdxPair('mismatch', false, [0, 1, 1, 0]);
    await rejectsWith(openIdxDataset({ images, labels, name: 'm' }), RuntimeFailure,
      'mismatch-images-idx3-ubyte', 'mismatch-labels-idx1-ubyte', '3 images', '4 labels');
  });

  test('items with a zero dimension → RuntimeFailure saying they have no pixels', async () => {
    const images = await put('zero-images-idx3-ubyte', idxBytes(0x08, [2, 0, 28], []));
    const labels = await put('zero-labels-idx1-ubyte', idxBytes(0x08, [2], [0, 1]));
    await rejectsWith(openIdxDataset({ images, labels, name: 'z' }), RuntimeFailure, 'no pixels');
  });

  test('labels outside the class list → RuntimeFailure', async () => {
    const { images, labels } = await smallIdxPair('outside', false, [0, 5, 1]);
    await rejectsWith(openIdxDataset({ images, labels, name: 'o', classes: ['a', 'b'] }), RuntimeFailure, 'label 5');
  });

  test('real MNIST t10k: 10,000 items 28x28x1, label histogram and pixels equal the raw bytes', async (t) => {
    if (!hasMnist) return t.skip('needs ../shared/assets/data/mnist (absent)');
    const images = join(MNIST_DIR, 't10k-images-idx3-ubyte.gz');
    const labels = join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz');
    const ds = await openIdxDataset({ images, labels, name: 'mnist' });
    assert.equal(ds.labels.length, 10000);
    assert.deepEqual(ds.itemShape, [28, 28, 1]);
    const rawLabels = gunzipSync(await readFile(labels));
    const expected = new Array(10).fill(0);
    for (let i = 8; i < rawLabels.length; i++) expected[rawLabels[i]!]++;
    const got = new Array(10).fill(0);
    for (const l of ds.labels) got[l]++;
    assert.deepEqual(got, expected);
    assert.equal(expected.reduce((a, b) => a + b, 0), 10000);
    const rawImages = gunzipSync(await readFile(images));
    const b = await ds.read([9999, 0]);
    assert.deepEqual(Array.from(b.x.subarray(0, 784)), Array.from(rawImages.subarray(16 + 9999 * 784, 16 + 10000 * 784)));
    assert.deepEqual(Array.from(b.x.subarray(784)), Array.from(rawImages.subarray(16, 16 + 784)));
    assert.equal(ds.source.files[0]!.sha256, '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6');
  });
});

describe('csv', () => {
  test('header skipped, HWC kept, CHW converted to HWC', async () => {
    // Two 2x2x3 items. In CHW order the values are plane R, plane G, plane B.
    const item = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const text = `label,${item.map((_, i) => 'p' + i).join(',')}\n1,${item.join(',')}\r\n0,${item.map((v) => v * 2).join(',')}\n\n`;
    const p = await put('small.csv', text);
    const hwc = await openCsvDataset(p, { layout: 'HWC', shape: [2, 2, 3] });
    assert.deepEqual(Array.from(hwc.labels), [1, 0]);
    assert.deepEqual(Array.from((await hwc.read([0])).x), item);
    assert.equal(hwc.source.detail?.header, true);
    const chw = await openCsvDataset(p, { layout: 'CHW', shape: [2, 2, 3] });
    // pixel p channel c came from position c*4 + p.
    const expected: number[] = [];
    for (let px = 0; px < 4; px++) for (let c = 0; c < 3; c++) expected.push(item[c * 4 + px]! * 2);
    assert.deepEqual(Array.from((await chw.read([1])).x), expected);
    assert.deepEqual(chw.source.files[0]!.sha256, sha(await readFile(p)));
  });

  test('ragged row and non-numeric value → RuntimeFailure with the line number', async () => {
    const ragged = await put('ragged.csv', '0,1,2,3,4\n1,1,2,3,4\n1,1,2,3\n');
    await rejectsWith(openCsvDataset(ragged, { layout: 'HWC', shape: [2, 2, 1] }), RuntimeFailure, 'line 3', 'ragged');
    const nan = await put('nan.csv', '0,1,2,3,4\n1,1,x,3,4\n');
    await rejectsWith(openCsvDataset(nan, { layout: 'HWC', shape: [2, 2, 1] }), RuntimeFailure, 'line 2', '`x`');
    const empty = await put('empty-field.csv', '0,1,2,3,4\n1,1,,3,4\n');
    await rejectsWith(openCsvDataset(empty, { layout: 'HWC', shape: [2, 2, 1] }), RuntimeFailure, 'line 2');
  });

  test('ambiguous width without a shape → UsageError; wrong shape → UsageError', async () => {
    const p = await put('five.csv', '0,1,2,3,4,5\n');
    await rejectsWith(openCsvDataset(p, { layout: 'HWC' }), UsageError, '5 values');
    await rejectsWith(openCsvDataset(p, { layout: 'HWC', shape: [2, 2, 1] }), UsageError, '[2, 2, 1]');
  });

  test('real ERAN mnist_test.csv equals the first 100 MNIST t10k items', async (t) => {
    if (!hasEran) return t.skip('needs ../shared/assets/data/eran (absent)');
    const ds = await openCsvDataset(join(ERAN_DIR, 'mnist_test.csv'), { layout: 'HWC' });
    assert.equal(ds.labels.length, 100);
    assert.deepEqual(ds.itemShape, [28, 28, 1]);
    if (!hasMnist) return;
    const rawImages = gunzipSync(await readFile(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz')));
    const rawLabels = gunzipSync(await readFile(join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz')));
    assert.deepEqual(Array.from(ds.labels), Array.from(rawLabels.subarray(8, 108)));
    const all = await ds.read(Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(Array.from(all.x), Array.from(rawImages.subarray(16, 16 + 100 * 784)));
  });

  test('real ERAN cifar10_test.csv: 100 items 32x32x3, values as written', async (t) => {
    if (!hasEran) return t.skip('needs ../shared/assets/data/eran (absent)');
    const p = join(ERAN_DIR, 'cifar10_test.csv');
    const ds = await openCsvDataset(p, { layout: 'HWC' });
    assert.equal(ds.labels.length, 100);
    assert.deepEqual(ds.itemShape, [32, 32, 3]);
    const lines = (await readFile(p, 'utf8')).trim().split('\n');
    const last = lines[lines.length - 1]!.split(',').map(Number);
    const b = await ds.read([99]);
    assert.equal(b.labels[0], last[0]);
    assert.deepEqual(Array.from(b.x), last.slice(1));
  });
});

describe('npy', () => {
  test('NpyWriter header matches the NPY v1 spec byte for byte', async () => {
    const p = join(dir, 'hdr.npy');
    const w = await NpyWriter.create(p, [5, 3], 'float32');
    await w.write(new Float32Array(15));
    await w.close();
    const bytes = await readFile(p);
    assert.deepEqual(Array.from(bytes.subarray(0, 8)), [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const hlen = bytes.readUInt16LE(8);
    assert.equal((10 + hlen) % 64, 0);
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }";
    const header = bytes.subarray(10, 10 + hlen).toString('latin1');
    assert.equal(header, dict + ' '.repeat(hlen - dict.length - 1) + '\n');
    assert.equal(hlen, 118); // 10 + 59 + 1 = 70 → padded to 128
    assert.equal(bytes.length, 128 + 15 * 4);
  });

  test('readNpy reads what NpyWriter streamed (float32 2-D in chunks, int32 1-D)', async () => {
    const p = join(dir, 'round.npy');
    const w = await NpyWriter.create(p, [5, 3], 'float32');
    const all = Float32Array.from({ length: 15 }, (_, i) => i * 0.5 - 3);
    // Unawaited writes must still land in call order.
    const pending = [w.write(all.subarray(0, 6)), w.write(all.subarray(6, 12))];
    await Promise.all(pending);
    await w.write(all.subarray(12));
    await w.close();
    const r = await readNpy(p);
    assert.equal(r.dtype, 'float32');
    assert.deepEqual(r.shape, [5, 3]);
    assert.deepEqual(list(r.data), Array.from(all));

    const q = join(dir, 'labels-i4.npy');
    const wi = await NpyWriter.create(q, [4], 'int32');
    await wi.write(Int32Array.from([3, -1, 7, 2147483647]));
    await wi.close();
    const ri = await readNpy(q);
    assert.equal(ri.dtype, 'int32');
    assert.deepEqual(ri.shape, [4]);
    assert.deepEqual(list(ri.data), [3, -1, 7, 2147483647]);
    assert.ok((await readFile(q)).toString('latin1').includes("'shape': (4,), }"));
  });

  test('NpyWriter refuses too many elements and removes a short file on close', async () => {
    const p = join(dir, 'short.npy');
    const w = await NpyWriter.create(p, [2, 3], 'float32');
    await rejectsWith(w.write(new Float32Array(7)), RuntimeFailure, 'exceed');
    await rejectsWith(w.write(new Int32Array(2) as unknown as Float32Array), RuntimeFailure, 'Int32Array');
    await w.write(new Float32Array(4));
    await rejectsWith(w.close(), RuntimeFailure, '4 elements written', '6');
    assert.equal(existsSync(p), false);
  });

  /** Hand-built .npy with any header text, for the reader's edge cases. */

  test('readNpy: v2 header, uint8 and int64; fortran order, big-endian, truncation rejected', async () => {
    const u8 = await put('u8.npy', npyRaw("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", Uint8Array.from([1, 2, 250, 0]), 2));
    const r = await readNpy(u8);
    assert.deepEqual([r.dtype, r.shape, list(r.data)], ['uint8', [2, 2], [1, 2, 250, 0]]);
    const i8 = Buffer.alloc(16);
    i8.writeBigInt64LE(-3n, 0);
    i8.writeBigInt64LE(9n, 8);
    const r8 = await readNpy(await put('i8.npy', npyRaw("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", i8)));
    assert.deepEqual([r8.dtype, list(r8.data)], ['int64', [-3n, 9n]]);
    const f = await put('fortran.npy', npyRaw("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", new Uint8Array(8)));
    await rejectsWith(readNpy(f), RuntimeFailure, 'Fortran');
    const be = await put('be.npy', npyRaw("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8)));
    await rejectsWith(readNpy(be), RuntimeFailure, '>f4');
    const tr = await put('tr.npy', npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", new Uint8Array(20)));
    await rejectsWith(readNpy(tr), RuntimeFailure, 'truncated', '24', '20');
  });

  test('readNpy: data that starts off the item alignment (a header padded to 69 bytes) reads as written', async () => {
    // numpy writes 64-byte-aligned headers but reads any length; such a file needs a copy.
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }";
    const h = dict + ' '.repeat(69 - 10 - dict.length - 1) + '\n';
    const head = Buffer.alloc(10);
    head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    head.writeUInt16LE(h.length, 8);
    const values = [0, 1.5, 3, 4.5, 6, 7.5];
    const file = await put('odd.npy', Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(Float32Array.from(values).buffer)]));
    assert.equal((await readFile(file)).length - 4 * 6, 69);
    const r = await readNpy(file);
    assert.deepEqual([r.dtype, r.shape, list(r.data)], ['float32', [6], values]);
  });

  test('a label far beyond any class count is corruption, not 2e9 class names', async () => {
    const images = await put('big-images.npy', npyRaw("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }", new Uint8Array(8)));
    const l = new Int32Array([0, 2_000_000_000]);
    await put('big-images.labels.npy', npyRaw("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(l.buffer)));
    await rejectsWith(openNpyDataset(images, images.replace('.npy', '.labels.npy')), RuntimeFailure, 'label 2000000000 of item 1');
  });

  test('openNpyDataset: uint8 [N,H,W] images with int64 labels', async () => {
    const px = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => i * 10);
    const images = await put('npyds/x.npy', npyRaw("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), }", px));
    const lab = Buffer.alloc(24);
    [1, 0, 1].forEach((v, i) => lab.writeBigInt64LE(BigInt(v), 8 * i));
    const labels = await put('npyds/x-labels.npy', npyRaw("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", lab));
    const ds = await openNpyDataset(images, labels, { classes: ['no', 'yes'] });
    assert.deepEqual(ds.itemShape, [2, 2, 1]);
    assert.deepEqual(Array.from(ds.labels), [1, 0, 1]);
    assert.deepEqual(Array.from((await ds.read([2])).x), [80, 90, 100, 110]);
    assert.equal(ds.source.kind, 'npy');
    const short = await put('npyds/short-labels.npy', npyRaw("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", lab.subarray(0, 16)));
    await rejectsWith(openNpyDataset(images, short), RuntimeFailure, '3 images', '2 labels');
  });
});

describe('openDataset', () => {
  test('IDX images file finds its labels; folder picks t10k unless split=train', async () => {
    const sub = join(dir, 'pairs');
    await mkdir(sub);
    const img = (v: number) => idxBytes(0x08, [2, 1, 1], [v, v + 1]);
    await writeFile(join(sub, 'train-images-idx3-ubyte.gz'), gzipSync(img(100)));
    await writeFile(join(sub, 'train-labels-idx1-ubyte.gz'), gzipSync(idxBytes(0x08, [2], [1, 1])));
    await writeFile(join(sub, 't10k-images-idx3-ubyte'), img(7));
    await writeFile(join(sub, 't10k-labels-idx1-ubyte'), idxBytes(0x08, [2], [0, 1]));
    const f = await openDataset(join(sub, 'train-images-idx3-ubyte.gz'));
    assert.deepEqual(Array.from((await f.read([0, 1])).x), [100, 101]);
    const test1 = await openDataset(sub);
    assert.deepEqual(Array.from((await test1.read([0, 1])).x), [7, 8]);
    const train = await openDataset(sub, { split: 'train' });
    assert.deepEqual(Array.from(train.labels), [1, 1]);
    await rejectsWith(openDataset(join(sub, 'train-labels-idx1-ubyte.gz')), UsageError, 'labels file');
  });

  test('.csv and .npy (labels beside it) are recognised', async () => {
    const csv = await put('open/x.csv', '3,1,2,3,4\n');
    const c = await openDataset(csv, { shape: [2, 2, 1] });
    assert.deepEqual(Array.from(c.labels), [3]);
    const w = await NpyWriter.create(join(dir, 'open/acts.npy'), [2, 1, 1, 1], 'float32');
    await w.write(Float32Array.from([0.5, 1.5]));
    await w.close();
    await rejectsWith(openDataset(join(dir, 'open/acts.npy')), UsageError, 'labels');
    const l = await NpyWriter.create(join(dir, 'open/labels.npy'), [2], 'int32');
    await l.write(Int32Array.from([1, 0]));
    await l.close();
    const n = await openDataset(join(dir, 'open/acts.npy'));
    assert.deepEqual(Array.from((await n.read([1, 0])).x), [1.5, 0.5]);
    assert.deepEqual(Array.from(n.labels), [1, 0]);
  });

  test('unknown reference → UsageError listing known names, with a did-you-mean', async () => {
    assert.deepEqual(listKnownDatasets(), ['fashion-mnist', 'mnist']);
    await assert.rejects(openDataset('mnsit'), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, 'dataset `mnsit` not found: no such file, and not a known dataset name (known: fashion-mnist, mnist)');
      assert.equal(e.hint, 'did you mean `mnist`?');
      return true;
    });
    await rejectsWith(openDataset('mnist:valid'), UsageError, 'valid');
    await rejectsWith(openDataset('fashion-mnist:train', { split: 'test' }), UsageError, 'train', 'test');
  });

  test('`mnist` resolves through $LAYERPROBE_DATA first', async (t) => {
    if (!hasMnist) return t.skip('needs ../shared/assets/data/mnist (absent)');
    const data = join(dir, 'lpdata');
    await mkdir(join(data, 'mnist'), { recursive: true });
    for (const f of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) await symlink(join(MNIST_DIR, f), join(data, 'mnist', f));
    const saved = process.env.LAYERPROBE_DATA;
    process.env.LAYERPROBE_DATA = data;
    try {
      const ds = await openDataset('mnist');
      assert.equal(ds.labels.length, 10000);
      assert.equal(ds.source.kind, 'mnist');
      assert.equal(ds.source.detail?.location, 'env');
      assert.equal(ds.source.detail?.split, 'test');
      assert.equal(ds.source.detail?.checksum, 'official');
      assert.deepEqual(ds.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    } finally {
      if (saved === undefined) delete process.env.LAYERPROBE_DATA;
      else process.env.LAYERPROBE_DATA = saved;
    }
    assert.deepEqual((await readdir(join(data, 'mnist'))).length, 2);
  });

  test('`fashion-mnist` (default test split) from the Debian package', async (t) => {
    if (!hasFashion) return t.skip('needs /usr/share/datasets/fashion-mnist (absent)');
    const ds = await openDataset('fashion-mnist');
    assert.equal(ds.labels.length, 10000);
    assert.equal(ds.classes[9], 'Ankle boot');
    // Debian re-wrote the gzip headers (different file digest, same data); an official copy
    // earlier on the search path (e.g. in $LAYERPROBE_DATA) would match outright.
    assert.ok(['same-content', 'official'].includes(String(ds.source.detail?.checksum)));
  });
});

describe('hardening: bounded gunzip, labels range-checked before narrowing', () => {
  test('a gzip IDX that inflates beyond its header-declared size stops there: "decompresses beyond its declared size"', async () => {
    // Header declares 10x10x10 bytes; the stream goes on with 64 MiB of zeros (64 KiB compressed).
    const head = idxBytes(0x08, [10, 10, 10], new Array(1000).fill(7));
    const bomb = gzipSync(Buffer.concat([head, Buffer.alloc(64 << 20)]), { level: 1 });
    assert.ok(bomb.length < 1 << 20);
    const file = await put('bomb-images-idx3-ubyte.gz', bomb);
    await rejectsWith(readIdx(file), RuntimeFailure, file, 'decompresses beyond its declared size', `declares ${head.length} bytes`);
    // A header declaring more than any array can hold is refused before inflating it.
    const huge = gzipSync(idxBytes(0x08, [0xffffffff, 0xffff, 2], []));
    await rejectsWith(readIdx(await put('huge-idx.gz', huge)), RuntimeFailure, 'more than one array can hold');
    // Registry verification inflates the same way: a bomb is a mismatch, not gigabytes.
    const { verifyFile } = await import('../src/data/registry.js');
    assert.equal(await verifyFile(file, { file: 'x', sha256: '0'.repeat(64), md5: '', bytes: bomb.length, contentSha256: sha(head) }), 'mismatch');
  });

  test('gunzipCapped: exact size passes, one byte more fails, garbage inside stops at the header', async () => {
    const { gunzipCapped } = await import('../src/data/gzip.js');
    const { idxDeclaredSize } = await import('../src/data/idx.js');
    const ok = idxBytes(0x08, [3, 4], new Array(12).fill(1));
    assert.deepEqual(await gunzipCapped(gzipSync(ok), 'f', idxDeclaredSize), ok);
    await assert.rejects(gunzipCapped(gzipSync(Buffer.concat([ok, Buffer.from([0])])), 'f', idxDeclaredSize), /decompresses beyond its declared size/);
    // Not IDX inside: inflation stops at the first chunk; the parser then says why.
    const notIdx = await gunzipCapped(gzipSync(Buffer.alloc(4 << 20, 0x41)), 'f', idxDeclaredSize);
    assert.ok(notIdx.length < 4 << 20, `kept ${notIdx.length} bytes`);
  });

  test('a CSV label of 4294967299 is refused, not wrapped to class 3', async () => {
    const row = (l: string) => `${l},${new Array(784).fill(0).join(',')}`;
    const file = await put('wrap.csv', [row('0'), row('4294967299'), row('1'), row('3')].join('\n') + '\n');
    await rejectsWith(openCsvDataset(file, { layout: 'HWC' }), RuntimeFailure, 'label 4294967299 of item 1 is not a class index');
  });

  test('IDX, NPY and label lists: every source is range-checked before narrowing to int32', async () => {
    const { images } = await smallIdxPair('neg', false);
    const labels = await put('neg-int32-labels', idxBytes(0x0c, [3], [1, -5, 0]));
    await rejectsWith(openIdxDataset({ images, labels, name: 'neg' }), RuntimeFailure, 'label -5 of item 1 is not a class index');
    const npyImages = await put('wrapnpy/x.npy', npyRaw("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 1), }", new Uint8Array(2)));
    const lab = Buffer.alloc(16);
    lab.writeBigInt64LE(1n, 0);
    lab.writeBigInt64LE(2n ** 32n + 1n, 8);
    const npyLabels = await put('wrapnpy/x-labels.npy', npyRaw("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", lab));
    await rejectsWith(openNpyDataset(npyImages, npyLabels), RuntimeFailure, `label ${2 ** 32 + 1} of item 1 is not a class index`);
    const { narrowLabels } = await import('../src/data/memory.js');
    assert.deepEqual(Array.from(narrowLabels([0, 2147483647, 5n], 'l')), [0, 2147483647, 5]);
    for (const bad of [2147483648, -1, 1.5, NaN, 2n ** 31n]) assert.throws(() => narrowLabels([0, bad], 'l'), RuntimeFailure, String(bad));
  });
});
