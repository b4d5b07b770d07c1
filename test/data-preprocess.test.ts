import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../src/errors.js';
import { memoryDataset } from '../src/data/memory.js';
import { describePreprocess, parsePreprocess, preprocess } from '../src/data/preprocess.js';
import { inferPreprocess } from '../src/data/fit-input.js';
import { apportion, batchesOf, selectIndices } from '../src/data/sampling.js';
import type { RawBatch } from '../src/data/types.js';

function batch(h: number, w: number, c: number, values: number[]): RawBatch {
  const n = values.length / (h * w * c);
  return { x: Float32Array.from(values), shape: [n, h, w, c], labels: new Int32Array(n), indices: new Int32Array(n) };
}

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `[${i}] ${actual[i]} vs ${expected[i]}`);
  }
}

// One 2x2 RGB item: pixels (10,20,30) (40,50,60) (70,80,90) (100,110,120).
const rgb = batch(2, 2, 3, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]);

describe('preprocess', () => {
  test('scale, per-channel mean/std and NCHW against a hand computation', () => {
    const out = preprocess(rgb, { scale: 10, mean: [1, 2, 3], std: [2, 4, 8], layout: 'NCHW' });
    assert.deepEqual(out.shape, [1, 3, 2, 2]);
    // x/10 − mean, / std, per pixel: (0,0,0) (1.5,.75,.375) (3,1.5,.75) (4.5,2.25,1.125), planes in order.
    close(out.data, [0, 1.5, 3, 4.5, 0, 0.75, 1.5, 2.25, 0, 0.375, 0.75, 1.125]);
    const flat = preprocess(rgb, { scale: 10, mean: [1, 2, 3], std: [2, 4, 8], layout: 'NCHW', reshape: [-1] });
    assert.deepEqual(flat.shape, [1, 12]);
    const nhwc = preprocess(rgb, { scale: 10, mean: [1, 2, 3], std: [2, 4, 8], reshape: [4, 3] });
    assert.deepEqual(nhwc.shape, [1, 4, 3]);
    close(nhwc.data, [0, 0, 0, 1.5, 0.75, 0.375, 3, 1.5, 0.75, 4.5, 2.25, 1.125]);
  });

  test('3→1 luma (0.299, 0.587, 0.114) with broadcast mean/std; 1→3 replication', () => {
    // luma: 18.15, 48.15, 78.15, 108.15; minus 0.15, halved: 9, 24, 39, 54.
    const grey = preprocess(rgb, { channels: 1, mean: [0.15], std: [2] });
    assert.deepEqual(grey.shape, [1, 2, 2, 1]);
    close(grey.data, [9, 24, 39, 54], 1e-4);
    const three = preprocess(batch(1, 2, 1, [1, 2]), { channels: 3 });
    assert.deepEqual(three.shape, [1, 1, 2, 3]);
    assert.deepEqual(Array.from(three.data), [1, 1, 1, 2, 2, 2]);
  });

  test('bilinear resize, align_corners=false, up and down', () => {
    // 2x2 → 4x4: source coordinates −0.25→0, 0.25, 0.75, 1.25→clamped to the last pixel.
    const up = preprocess(batch(2, 2, 1, [0, 10, 20, 30]), { size: [4, 4] });
    assert.deepEqual(up.shape, [1, 4, 4, 1]);
    close(up.data, [0, 2.5, 7.5, 10, 5, 7.5, 12.5, 15, 15, 17.5, 22.5, 25, 20, 22.5, 27.5, 30]);
    // 4x4 → 2x2: source coordinates 0.5 and 2.5, i.e. the mean of each 2x2 block.
    const down = preprocess(batch(4, 4, 1, Array.from({ length: 16 }, (_, i) => i)), { size: [2, 2] });
    close(down.data, [2.5, 4.5, 10.5, 12.5]);
    // 3x3 → 2x2 of f(y,x)=3y+x: bilinear reproduces a linear function at (0.25|1.75, 0.25|1.75).
    const odd = preprocess(batch(3, 3, 1, Array.from({ length: 9 }, (_, i) => i)), { size: [2, 2] });
    close(odd.data, [1, 2.5, 5.5, 7]);
    // Two items and two channels stay separate.
    const two = preprocess(batch(1, 1, 2, [3, 4, 5, 6]), { size: [2, 2] });
    close(two.data, [3, 4, 3, 4, 3, 4, 3, 4, 5, 6, 5, 6, 5, 6, 5, 6]);
  });

  test('wrong mean length and impossible reshape → UsageError', () => {
    assert.throws(() => preprocess(rgb, { mean: [0, 0] }), (e: unknown) => e instanceof UsageError && e.message.includes('mean has 2 values') && e.message.includes('3 channels'));
    assert.throws(() => preprocess(rgb, { reshape: [5] }), (e: unknown) => e instanceof UsageError && e.message.includes('[2, 2, 3]') && e.message.includes('[5]'));
    assert.throws(() => preprocess(rgb, { std: [0] }), UsageError);
  });

  test('parsePreprocess validates and names the bad key', () => {
    const spec = { size: [28, 28], channels: 1, scale: 255, mean: [0.1307], std: [0.3081], layout: 'NCHW', reshape: [784] };
    assert.deepEqual(parsePreprocess(spec), spec);
    assert.deepEqual(parsePreprocess(undefined), {});
    const bad: [unknown, string][] = [
      [{ scal: 255 }, '`scal`'],
      [{ layout: 'NCWH' }, '`layout`'],
      [{ mean: [0.1, 'x'] }, '`mean.1`'],
      [{ size: [28] }, '`size`'],
      [{ channels: 2 }, '`channels`'],
      [{ scale: -1 }, '`scale`'],
    ];
    for (const [obj, needle] of bad) {
      assert.throws(() => parsePreprocess(obj), (e: unknown) => e instanceof UsageError && e.message.includes(needle), JSON.stringify(obj));
    }
  });

  test('describePreprocess is one line', () => {
    assert.equal(
      describePreprocess({ size: [32, 32], channels: 3, scale: 255, mean: [0.5], std: [0.25], layout: 'NCHW', reshape: [3072] }),
      'resize 32x32 bilinear, 3 channels (grey replicated), x/255, (x-[0.5])/[0.25], CHW order, reshape [3072]',
    );
    assert.equal(describePreprocess({}), 'NHWC');
    // A [784, 1] model input is not an image: no NHWC label, only the pixel order of the flattening.
    assert.equal(describePreprocess({ scale: 255, layout: 'NHWC', reshape: [784, 1] }), 'x/255, HWC order, reshape [784, 1]');
  });
});

describe('sampling', () => {
  // Class sizes 50, 30, 20 and an empty class 3; reversed so that class order ≠ index order.
  const shuffled = Int32Array.from([...new Array(50).fill(0), ...new Array(30).fill(1), ...new Array(20).fill(2)]).reverse();
  const count = (idx: Int32Array, l: Int32Array) => {
    const c = new Array(4).fill(0);
    for (const i of idx) c[l[i]!]++;
    return c;
  };
  const sortedUnique = (idx: Int32Array) => {
    for (let i = 1; i < idx.length; i++) assert.ok(idx[i]! > idx[i - 1]!, 'ascending and unique');
  };

  test('perClass caps each class, takes all of a small class, leaves empty classes absent', () => {
    const idx = selectIndices(shuffled, 4, { perClass: 25, seed: 1 });
    assert.deepEqual(count(idx, shuffled), [25, 25, 20, 0]);
    sortedUnique(idx);
  });

  test('limit apportions by class size (largest remainder)', () => {
    assert.deepEqual(apportion([50, 30, 20, 0], 10), [5, 3, 2, 0]);
    // exact 3.5, 2.1, 1.4 → floors 3, 2, 1; the one left goes to the largest remainder.
    assert.deepEqual(apportion([50, 30, 20], 7), [4, 2, 1]);
    assert.deepEqual(apportion([5, 5], 20), [5, 5]);
    const idx = selectIndices(shuffled, 4, { limit: 7, seed: 3 });
    assert.deepEqual(count(idx, shuffled), [4, 2, 1, 0]);
    sortedUnique(idx);
    const both = selectIndices(shuffled, 4, { perClass: 20, limit: 30, seed: 3 });
    assert.deepEqual(count(both, shuffled), [10, 10, 10, 0]);
  });

  test('deterministic for a seed, different across seeds, all when unconstrained', () => {
    const a = selectIndices(shuffled, 4, { perClass: 10, seed: 42 });
    const b = selectIndices(shuffled, 4, { perClass: 10, seed: 42 });
    const c = selectIndices(shuffled, 4, { perClass: 10, seed: 43 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.deepEqual(Array.from(selectIndices(shuffled, 4, { seed: 0 })), Array.from({ length: 100 }, (_, i) => i));
    assert.throws(() => selectIndices(shuffled, 4, { perClass: -1, seed: 0 }), UsageError);
    // Every item of class 0 is reachable: over many seeds each is chosen about 10/50 of the time.
    const hits = new Array(100).fill(0);
    for (let s = 0; s < 500; s++) for (const i of selectIndices(shuffled, 4, { perClass: 10, seed: s })) hits[i]++;
    for (let i = 50; i < 100; i++) assert.ok(hits[i] > 60 && hits[i] < 145, `item ${i} chosen ${hits[i]} times`);
  });

  test('batchesOf reads lazily in order, last batch short', async () => {
    const ds = memoryDataset({
      name: 'm', classes: ['a', 'b'], labels: Int32Array.from({ length: 10 }, (_, i) => i % 2), itemShape: [1, 1, 1],
      pixels: Uint8Array.from({ length: 10 }, (_, i) => i * 3), source: { kind: 'test', files: [] },
    });
    const idx = Int32Array.from([0, 2, 3, 5, 7, 8, 9]);
    const seen: number[][] = [];
    for await (const b of batchesOf(ds, idx, 3)) seen.push(Array.from(b.x));
    assert.deepEqual(seen, [[0, 6, 9], [15, 21, 24], [27]]);
    await assert.rejects(async () => {
      for await (const _ of batchesOf(ds, idx, 0)) void _;
    }, UsageError);
  });
});

describe('inferPreprocess', () => {
  const ds = (pixels: Float32Array | Float64Array | Uint8Array | Int16Array, shape: [number, number, number] = [2, 2, 1]) =>
    memoryDataset({ name: 'd', classes: ['a'], labels: new Int32Array(pixels.length / (shape[0] * shape[1] * shape[2])), itemShape: shape, pixels, source: { kind: 'test', files: [] } });

  test('the pixel scale follows the values, not the storage type', () => {
    assert.equal(inferPreprocess([null, 2, 2, 1], ds(Uint8Array.from([0, 1, 0, 1]))).scale, 255, 'bytes are 8-bit pixels even when small');
    assert.equal(inferPreprocess([null, 2, 2, 1], ds(Float64Array.from([0, 0.5, 1, 0.25]))).scale, 1, 'float64 in [0,1]');
    assert.equal(inferPreprocess([null, 2, 2, 1], ds(Float32Array.from([0, 0.5, 1, 0.25]))).scale, 1, 'float32 in [0,1]');
    assert.equal(inferPreprocess([null, 2, 2, 1], ds(Float32Array.from([0, 128, 255, 3]))).scale, 255, 'float32 holding 0..255');
    assert.equal(inferPreprocess([null, 2, 2, 1], ds(Int16Array.from([0, 128, 255, 3]))).scale, 255, 'int16 pixels');
  });

  test('layout, size and channels come from the input shape; the user overrides', () => {
    const grey = ds(new Uint8Array(4 * 4), [4, 4, 1]);
    assert.deepEqual(inferPreprocess([null, 1, 4, 4], grey), { scale: 255, layout: 'NCHW' });
    assert.deepEqual(inferPreprocess([null, 8, 8, 3], grey), { scale: 255, layout: 'NHWC', size: [8, 8], channels: 3 });
    assert.equal(inferPreprocess([null, 4, 4, 1], grey, { scale: 1 }).scale, 1);
    // A flat input with a unit axis is not an NHWC image: only the reshape is recorded.
    assert.deepEqual(inferPreprocess([null, 16, 1], grey), { scale: 255, reshape: [16, 1] });
    assert.deepEqual(inferPreprocess([null, 16], grey), { scale: 255, reshape: [16] });
  });
});
