/**
 * The wasm training kernels (src/train/wasm-kernels.ts) against TF.js's cpu backend, which
 * implements every gradient directly: conv filter/input gradients for stride 1/2/3 and
 * same/valid padding, transposed matmuls, Tile and its gradient.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type * as tfTypes from '../src/runtime/tf-types.js';
import { loadTf, type Tf } from '../src/runtime/backend.js';
import { registerTrainingKernels } from '../src/train/wasm-kernels.js';
import { randn } from './helpers/random.js';

type Tensor = tfTypes.Tensor;

let tf: Tf;

before(async () => {
  tf = (await loadTf('wasm')).tf;
  registerTrainingKernels(tf);
});

/** Runs `f` on both backends with the same inputs; returns each output's values per backend. */
async function onBoth(inputs: { data: Float32Array; shape: number[] }[], f: (...xs: Tensor[]) => Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const run = async (backend: string): Promise<Float32Array[]> => {
    await tf.setBackend(backend);
    const xs = inputs.map((i) => tf.tensor(i.data, i.shape));
    const outs = f(...xs);
    const vals = await Promise.all(outs.map(async (t) => Float32Array.from(await t.data())));
    tf.dispose([...xs, ...outs]);
    return vals;
  };
  try {
    return { wasm: await run('wasm'), cpu: await run('cpu') };
  } finally {
    await tf.setBackend('wasm');
  }
}

function assertClose(a: Float32Array, b: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  assert.ok(worst <= tol, `${what}: max relative difference ${worst}`);
}

describe('Conv2D gradients on wasm match the cpu backend', () => {
  const cases: { x: [number, number, number, number]; k: [number, number, number, number]; s: number; pad: 'same' | 'valid' }[] = [
    { x: [3, 9, 9, 3], k: [3, 3, 3, 5], s: 1, pad: 'same' },
    { x: [3, 9, 9, 3], k: [3, 3, 3, 5], s: 1, pad: 'valid' },
    { x: [3, 9, 9, 3], k: [3, 3, 3, 5], s: 2, pad: 'same' },
    { x: [3, 10, 9, 3], k: [3, 3, 3, 5], s: 2, pad: 'valid' },
    { x: [2, 12, 11, 1], k: [5, 5, 1, 8], s: 2, pad: 'same' },
    { x: [2, 8, 7, 2], k: [4, 2, 2, 3], s: 3, pad: 'valid' },
    { x: [2, 8, 7, 2], k: [4, 2, 2, 3], s: 3, pad: 'same' },
  ];
  for (const [i, c] of cases.entries()) {
    test(`x ${c.x.join('×')}, filter ${c.k.join('×')}, stride ${c.s}, ${c.pad}`, async () => {
      await tf.setBackend('cpu');
      const outShape = tf.conv2d(tf.zeros(c.x) as tfTypes.Tensor4D, tf.zeros(c.k) as tfTypes.Tensor4D, c.s, c.pad).shape;
      await tf.setBackend('wasm');
      const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
      const inputs = [
        { data: randn(10 + i, size(c.x)), shape: c.x },
        { data: randn(20 + i, size(c.k)), shape: c.k },
        { data: randn(30 + i, size(outShape)), shape: outShape },
      ];
      const r = await onBoth(inputs, (x, k, dy) =>
        tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(tf.conv2d(a as tfTypes.Tensor4D, b as tfTypes.Tensor4D, c.s, c.pad), dy!)))([x!, k!]),
      );
      assertClose(r.wasm[0]!, r.cpu[0]!, 'dx');
      assertClose(r.wasm[1]!, r.cpu[1]!, 'dW');
    });
  }
});

describe('other replaced kernels', () => {
  test('transposed BatchMatMul (2-D and batched)', async () => {
    const r = await onBoth(
      [
        { data: randn(1, 6 * 7), shape: [6, 7] },
        { data: randn(2, 5 * 7), shape: [5, 7] },
        { data: randn(3, 4 * 3 * 6 * 5), shape: [4, 3, 6, 5] },
        { data: randn(4, 6 * 5), shape: [6, 5] },
      ],
      (a, b, c, d) => [tf.matMul(a!, b!, false, true), tf.matMul(a!, d!, true, false), tf.matMul(c!, c!, true, false), tf.matMul(c!, c!, false, true), tf.matMul(b!, d!, true, true)],
    );
    r.wasm.forEach((w, i) => assertClose(w, r.cpu[i]!, `product ${i}`));
  });

  test('Tile and its gradient', async () => {
    const r = await onBoth([{ data: randn(4, 2 * 1 * 3), shape: [2, 1, 3] }, { data: randn(5, 4 * 5 * 6), shape: [4, 5, 6] }], (x, w) => {
      const tiled = tf.tile(x!, [2, 5, 2]);
      const g = tf.grad((a: Tensor) => tf.sum(tf.mul(tf.tile(a, [2, 5, 2]), w!)))(x!);
      return [tiled, g];
    });
    assert.deepEqual(r.wasm[0], r.cpu[0], 'tile is exact');
    assertClose(r.wasm[1]!, r.cpu[1]!, 'tile gradient');
  });

  test('MaxPoolGrad: first maximum of each window; odd sizes, overlapping windows, same padding', async () => {
    // Rounded ReLU outputs tie often, so the choice among equal maxima is exercised.
    const data = Float32Array.from(randn(6, 2 * 9 * 7 * 3), (v) => Math.max(0, Math.round(v * 2) / 2));
    for (const [size, stride, pad] of [[2, 2, 'valid'], [3, 3, 'valid'], [3, 2, 'valid'], [2, 2, 'same'], [3, 2, 'same']] as const) {
      const pool = (a: Tensor): Tensor => tf.maxPool(a as tfTypes.Tensor4D, size, stride, pad);
      const r = await onBoth([{ data, shape: [2, 9, 7, 3] }], (x) => {
        // Distinct upstream gradients per output cell, so a misrouted one shows.
        const weights = tf.range(1, 1 + pool(x!).size).reshape(pool(x!).shape);
        return [tf.grad((a: Tensor) => tf.sum(tf.mul(pool(a), weights)))(x!)];
      });
      assert.deepEqual(r.wasm[0], r.cpu[0], `pool ${size}, stride ${stride}, ${pad}`);
    }
  });

  test('no tensors leak from the composed kernels', async () => {
    const x = tf.randomNormal([2, 8, 8, 2]);
    const k = tf.randomNormal([3, 3, 2, 4]);
    const step = (): void => {
      const g = tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.conv2d(a as tfTypes.Tensor4D, b as tfTypes.Tensor4D, 2, 'same')))([x, k]);
      tf.dispose(g);
    };
    step();
    const before = { ...tf.memory(), ids: tf.backend().numDataIds() };
    for (let i = 0; i < 5; i++) step();
    const after = { ...tf.memory(), ids: tf.backend().numDataIds() };
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    // Intermediates live only in the backend; a missed disposeData shows up here.
    assert.equal(after.ids, before.ids);
    tf.dispose([x, k]);
  });
});
