/**
 * Exact NC1 and NC4 at any width through the second streaming pass (stats/mean-pass.ts): equal to
 * the d×d-scatter path and to plain float64 loops on constructed data, and, on a PyTorch CNN with
 * 6,272- and 3,136-wide pooled conv layers over all 10,000 Fashion-MNIST test images, equal to
 * numpy (test/fixtures/torch-fmnist-cnn/expected.json, from its make.py) to 1e-4 relative.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClassStats } from '../src/stats/accumulator.js';
import { MeanPassStats } from '../src/stats/mean-pass.js';
import { nc1, nc4 } from '../src/metrics/collapse.js';
import { audit } from '../src/pipeline/audit.js';
import { Rng } from '../src/util/rng.js';
import { ROOT, tempDir } from './helpers/fixtures.js';

const TORCH = path.join(ROOT, 'test/fixtures/torch-fmnist-cnn');
const TEST_SET = path.join(ROOT, 'datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');

function data(seed: number, n: number, d: number, K: number) {
  const rng = new Rng(seed);
  const centres = Float64Array.from({ length: K * d }, () => 3 * rng.normal());
  const X = new Float32Array(n * d);
  const labels = new Int32Array(n);
  const preds = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % K;
    labels[i] = k;
    preds[i] = rng.next() < 0.8 ? k : (k + 1) % K;
    // A large common offset: the pass must not lose precision to it.
    for (let j = 0; j < d; j++) X[i * d + j] = 100 + centres[k * d + j]! + 2 * rng.normal() * (1 + (j % 3));
  }
  return { X, labels, preds };
}

/** Plain float64 NC4 over all rows: nearest class mean vs prediction. */
function plainNc4(X: Float32Array, n: number, d: number, labels: Int32Array, preds: Int32Array, K: number): number {
  const mu = new Float64Array(K * d);
  const cnt = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    cnt[labels[i]!]!++;
    for (let j = 0; j < d; j++) mu[labels[i]! * d + j]! += X[i * d + j]!;
  }
  for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) mu[k * d + j]! /= cnt[k]!;
  let bad = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let arg = -1;
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (X[i * d + j]! - mu[k * d + j]!) ** 2;
      if (s < best) [best, arg] = [s, k];
    }
    if (arg !== preds[i]) bad++;
  }
  return bad / n;
}

test('second pass: NC1 equals the d×d-scatter NC1 and NC4 equals a plain loop over all rows', async () => {
  const [n, d, K] = [1200, 40, 5];
  const { X, labels, preds } = data(11, n, d, K);
  const withScatter = new ClassStats(K, d, { momentPrecision: 'float64' });
  const narrow = new ClassStats(K, d, { maxMomentDim: 8 });
  for (let o = 0; o < n; o += 300) {
    await withScatter.update(X.subarray(o * d, (o + 300) * d), 300, labels.subarray(o, o + 300));
    await narrow.update(X.subarray(o * d, (o + 300) * d), 300, labels.subarray(o, o + 300));
  }
  assert.equal(narrow.hasScatter, false);
  const pass = new MeanPassStats(narrow.moments());
  // Uneven chunks, as the pipeline's chunker gives them.
  for (const [a, b] of [
    [0, 77],
    [77, 700],
    [700, n],
  ] as const) {
    await pass.update(X.subarray(a * d, b * d), b - a, labels.subarray(a, b), preds.subarray(a, b));
  }
  const exact = await nc1(withScatter);
  const viaPass = await nc1(narrow, undefined, { meanPass: pass.result() });
  assert.equal(exact.detail!.source, 'statistics');
  assert.equal(viaPass.detail!.source, 'second-pass');
  assert.equal(viaPass.basis, undefined, 'exact over all N: no sampled basis');
  assert.ok(Math.abs(viaPass.value - exact.value) <= 1e-9 * exact.value, `${viaPass.value} vs ${exact.value}`);
  const r4 = await nc4(narrow, { X, n, d, K, labels, ids: [], predictions: preds } as never, preds, { meanPass: pass.result() });
  assert.equal(r4.value, plainNc4(X, n, d, labels, preds, K));
  assert.equal(r4.detail!.source, 'second-pass');
  // Without the pass, NC1 of a wide layer is the buffer's estimate and says it is sampled.
  await assert.rejects(nc1(narrow));
});

test('a second pass that saw other rows than the statistics is refused', async () => {
  const [n, d, K] = [200, 6, 3];
  const { X, labels } = data(2, n, d, K);
  const s = new ClassStats(K, d, { maxMomentDim: 2 });
  await s.update(X, n, labels);
  const pass = new MeanPassStats(s.moments());
  await pass.update(X.subarray(0, 100 * d), 100, labels.subarray(0, 100));
  await assert.rejects(nc1(s, undefined, { meanPass: pass.result() }), /second pass saw 100 rows/);
});

test('PyTorch CNN, all 10,000 test images, pooled conv layers 6,272 and 3,136 wide: NC1 and NC4 equal numpy', async (t) => {
  if (!existsSync(path.join(TORCH, 'model.onnx')) || !existsSync(TEST_SET)) {
    t.skip('needs test/fixtures/torch-fmnist-cnn and datasets/fashion-mnist');
    return;
  }
  const expected = JSON.parse(readFileSync(path.join(TORCH, 'expected.json'), 'utf8')) as { accuracy: number; nc1: Record<string, number>; nc4: Record<string, number> };
  const dir = await tempDir();
  const res = await audit({ models: [{ path: path.join(TORCH, 'model.onnx') }], dataset: TEST_SET, reduce: 'flatten', metrics: ['collapse'], out: path.join(dir, 'run') });
  const m = res.report.models[0]!;
  assert.equal(m.accuracy!.value, expected.accuracy);
  const names = ['pool1', 'pool2', 'fc1'];
  m.layers.forEach((l, i) => {
    const want = expected.nc1[names[i]!]!;
    const got = l.metrics.nc1!.value!;
    t.diagnostic(`${l.id} (d=${l.dim}): NC1 ${got} vs numpy ${want}; NC4 ${l.metrics.nc4!.value} vs ${expected.nc4[names[i]!]}`);
    assert.ok(Math.abs(got - want) <= 1e-4 * want, `${l.id}: NC1 ${got} vs numpy ${want}`);
    assert.equal(l.metrics.nc4!.value, expected.nc4[names[i]!]);
    assert.equal(l.metrics.nc4!.detail!.source, 'second-pass');
    if (l.dim > 2048) assert.equal(l.metrics.nc1!.detail!.source, 'second-pass');
  });
});
