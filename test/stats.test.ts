import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RuntimeFailure } from '../src/errors.js';
import { ClassStats } from '../src/stats/accumulator.js';
import { momentsFromSamples, NonFiniteFeatureError, withinTrace } from '../src/stats/moments.js';
import { selectionKey, SampleBuffer } from '../src/stats/sample-buffer.js';
import { Rng } from '../src/util/rng.js';

interface Data {
  X: Float32Array;
  labels: Int32Array;
  n: number;
  d: number;
  K: number;
}

/** Unbalanced classes with distinct means, a large common offset and anisotropic spread. */
function makeData(seed: number, n: number, d: number, K: number, offset = 0): Data {
  const rng = new Rng(seed);
  const centres = Array.from({ length: K }, () => Array.from({ length: d }, () => 3 * rng.normal()));
  const X = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    // Class k has weight k+1, so counts differ.
    let u = rng.next() * ((K * (K + 1)) / 2);
    let k = 0;
    while (u >= k + 1) u -= ++k;
    labels[i] = k;
    for (let j = 0; j < d; j++) X[i * d + j] = offset + centres[k]![j]! + (1 + j / d) * rng.normal();
  }
  return { X, labels, n, d, K };
}

/** Straightforward two-pass per-class statistics in float64, written out independently. */
function direct(data: Data) {
  const { X, labels, n, d, K } = data;
  const counts = new Array<number>(K).fill(0);
  const means = Array.from({ length: K }, () => new Array<number>(d).fill(0));
  for (let i = 0; i < n; i++) {
    counts[labels[i]!]!++;
    for (let j = 0; j < d; j++) means[labels[i]!]![j]! += X[i * d + j]!;
  }
  means.forEach((m, k) => m.forEach((_, j) => (m[j]! /= counts[k]!)));
  const scatter = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  let ssw = 0;
  for (let i = 0; i < n; i++) {
    const m = means[labels[i]!]!;
    for (let a = 0; a < d; a++) {
      const da = X[i * d + a]! - m[a]!;
      ssw += da * da;
      for (let b = 0; b < d; b++) scatter[a]![b]! += da * (X[i * d + b]! - m[b]!);
    }
  }
  const second = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  for (let i = 0; i < n; i++) for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) second[a]![b]! += X[i * d + a]! * X[i * d + b]!;
  return { counts, means, trW: ssw / n, scatter, second };
}

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

function maxRelMatrix(A: ArrayLike<number>, B: number[][]): number {
  const d = B.length;
  let scale = 0;
  let err = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      scale = Math.max(scale, Math.abs(B[i]![j]!));
      err = Math.max(err, Math.abs(A[i * d + j]! - B[i]![j]!));
    }
  }
  return err / scale;
}

async function feed(stats: ClassStats, data: Data, batch: number, from = 0, to = data.n): Promise<void> {
  const { d } = data;
  for (let s = from; s < to; s += batch) {
    const e = Math.min(to, s + batch);
    await stats.update(data.X.subarray(s * d, e * d), e - s, data.labels.subarray(s, e));
  }
}

test('ClassStats one pass equals the direct two-pass computation (means, tr Σ_W, scatter, second moment)', async () => {
  const data = makeData(11, 600, 6, 4);
  const ref = direct(data);
  for (const momentPrecision of ['float32', 'float64'] as const) {
    const s = new ClassStats(4, 6, { momentPrecision });
    await feed(s, data, 64);
    assert.equal(s.N, 600);
    for (let k = 0; k < 4; k++) {
      assert.equal(s.count(k), ref.counts[k]);
      const m = s.mean(k);
      for (let j = 0; j < 6; j++) assert.ok(rel(m[j]!, ref.means[k]![j]!) < 1e-12);
    }
    assert.ok(rel(s.withinTrace(), ref.trW) < 1e-12, `trW ${s.withinTrace()} vs ${ref.trW}`);
    const tol = momentPrecision === 'float64' ? 1e-12 : 1e-6;
    assert.ok(maxRelMatrix(s.withinScatter()!, ref.scatter) < tol, `${momentPrecision} scatter ${maxRelMatrix(s.withinScatter()!, ref.scatter)}`);
    assert.ok(maxRelMatrix(s.secondMoment()!, ref.second) < tol);
    let sumSq = 0;
    for (let k = 0; k < 4; k++) sumSq += s.sumSquaredNorms(k);
    let refSumSq = 0;
    for (const v of data.X) refSumSq += v * v;
    assert.ok(rel(sumSq, refSumSq) < 1e-12);
    // Read-outs through the shared moments functions, against the same plain pass.
    const g = s.globalMean();
    for (let j = 0; j < 6; j++) {
      let v = 0;
      for (let i = 0; i < data.n; i++) v += data.X[i * 6 + j]!;
      assert.ok(Math.abs(g[j]! - v / data.n) < 1e-12 * (1 + Math.abs(v / data.n)), `global mean ${j}`);
    }
    assert.ok(maxRelMatrix(s.withinCovariance()!, ref.scatter.map((r) => r.map((v) => v / data.n))) < tol);
    for (let k = 0; k < 4; k++) {
      let ss = 0;
      for (let i = 0; i < data.n; i++) {
        if (data.labels[i] !== k) continue;
        for (let j = 0; j < 6; j++) ss += (data.X[i * 6 + j]! - ref.means[k]![j]!) ** 2;
      }
      assert.ok(rel(s.classVariance(k), ss / ref.counts[k]!) < 1e-12, `Var_${k}`);
    }
  }
});

test('tr Σ_W stays accurate under a large common offset (where Σ‖h‖² − Σ n_k‖μ_k‖² cancels)', async () => {
  const data = makeData(12, 2000, 5, 3, 3000);
  const ref = direct(data);
  const s = new ClassStats(3, 5);
  await feed(s, data, 100);
  assert.ok(rel(s.withinTrace(), ref.trW) < 1e-9, `trW ${s.withinTrace()} vs ${ref.trW}`);
  // The textbook identity in float64 loses several digits here, which is why it is not used.
  let sq = 0;
  for (const v of data.X) sq += v * v;
  let between = 0;
  ref.means.forEach((m, k) => (between += ref.counts[k]! * m.reduce((a, v) => a + v * v, 0)));
  assert.ok(rel((sq - between) / data.n, ref.trW) > 1e-11);
  assert.ok(maxRelMatrix(s.withinScatter()!, ref.scatter) < 1e-6);
});

test('batch sizes 1, 7 and 256 give the same statistics', async () => {
  const data = makeData(13, 700, 5, 3, 10);
  const runs: ClassStats[] = [];
  for (const b of [1, 7, 256]) {
    for (const momentPrecision of ['float32', 'float64'] as const) {
      const s = new ClassStats(3, 5, { momentPrecision });
      await feed(s, data, b);
      runs.push(s);
    }
  }
  const base = runs[1]!; // batch 1, float64
  for (const s of runs) {
    assert.equal(s.N, base.N);
    assert.ok(rel(s.withinTrace(), base.withinTrace()) < 1e-9);
    const m = s.moments();
    const mb = base.moments();
    for (let i = 0; i < m.means.length; i++) assert.ok(Math.abs(m.means[i]! - mb.means[i]!) <= 1e-9 * Math.abs(mb.means[i]!));
    for (let k = 0; k < 3; k++) assert.ok(rel(m.ssw[k]!, mb.ssw[k]!) < 1e-9);
    const tol = s.momentPrecision === 'float64' ? 1e-9 : 1e-6;
    const S = m.scatter!;
    const Sb = mb.scatter!;
    let scale = 0;
    let err = 0;
    for (let i = 0; i < S.length; i++) {
      scale = Math.max(scale, Math.abs(Sb[i]!));
      err = Math.max(err, Math.abs(S[i]! - Sb[i]!));
    }
    assert.ok(err / scale < tol, `scatter ${s.momentPrecision} err ${err / scale}`);
  }
});

test('merge(A, B) equals one pass over both halves; JSON round trip is exact', async () => {
  const data = makeData(14, 500, 4, 3, 50);
  const whole = new ClassStats(3, 4, { momentPrecision: 'float64' });
  await feed(whole, data, 50);
  const a = new ClassStats(3, 4, { momentPrecision: 'float64' });
  const b = new ClassStats(3, 4, { momentPrecision: 'float64' });
  await feed(a, data, 33, 0, 217);
  await feed(b, data, 19, 217, 500);
  const restoredB = ClassStats.fromJSON(JSON.parse(JSON.stringify(b.toJSON())));
  assert.deepEqual(restoredB.moments(), b.moments());
  await a.merge(restoredB);
  const m = a.moments();
  const w = whole.moments();
  assert.deepEqual(Array.from(m.counts), Array.from(w.counts));
  for (let i = 0; i < m.means.length; i++) assert.ok(Math.abs(m.means[i]! - w.means[i]!) <= 1e-12 * Math.abs(w.means[i]!));
  for (let k = 0; k < 3; k++) assert.ok(rel(m.ssw[k]!, w.ssw[k]!) < 1e-9);
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(m.scatter![i]! - w.scatter![i]!) < 1e-9 * Math.abs(w.scatter![0]!));
  // Merging into an empty accumulator, and merging an accumulator without a class.
  const empty = new ClassStats(3, 4, { momentPrecision: 'float64' });
  await empty.merge(whole);
  assert.deepEqual(empty.moments(), whole.moments());
});

test('merge drops the scatter when one side did not keep it, and rejects other shapes', async () => {
  const data = makeData(15, 60, 4, 2);
  const a = new ClassStats(2, 4);
  const b = new ClassStats(2, 4, { maxMomentDim: 3 });
  assert.equal(b.hasScatter, false);
  await feed(a, data, 10);
  await feed(b, data, 10);
  await a.merge(b);
  assert.equal(a.hasScatter, false);
  assert.equal(a.N, 120);
  await assert.rejects(a.merge(new ClassStats(3, 4)), RuntimeFailure);
});

test('NaN input is rejected with a RuntimeFailure naming the sample and feature; the state is unchanged', async () => {
  const s = new ClassStats(2, 3);
  await s.update(new Float32Array([1, 2, 3]), 1, new Int32Array([0]));
  const bad = new Float32Array([1, 1, 1, 2, 2, 2, 3, NaN, 3]);
  await assert.rejects(s.update(bad, 3, new Int32Array([0, 1, 1])), (e: unknown) => {
    assert.ok(e instanceof RuntimeFailure);
    assert.ok(e instanceof NonFiniteFeatureError);
    assert.equal(e.sampleIndex, 2);
    assert.equal(e.featureIndex, 1);
    assert.match(e.message, /sample 2 of the batch, at feature 1/);
    return true;
  });
  await assert.rejects(s.update(new Float32Array([1, 2, Infinity]), 1, new Int32Array([1])), /sample 0 .* feature 2/);
  await assert.rejects(s.update(new Float32Array([1, 2, 3]), 1, new Int32Array([2])), (e: unknown) => e instanceof RuntimeFailure && /label 2 of sample 0/.test(e.message));
  assert.equal(s.N, 1);
  // The queue keeps working after a rejected batch.
  await s.update(new Float32Array([3, 2, 1]), 1, new Int32Array([0]));
  assert.equal(s.N, 2);
  assert.deepEqual(Array.from(s.mean(0)), [2, 2, 2]);
});

test('fromJSON rejects a malformed shard with a RuntimeFailure', () => {
  assert.throws(() => ClassStats.fromJSON({ format: 'nope' }), RuntimeFailure);
  const s = new ClassStats(2, 2).toJSON();
  assert.throws(() => ClassStats.fromJSON({ ...s, sums: 'AAAA' }), /sums holds/);
});

test('momentsFromSamples equals ClassStats', async () => {
  const data = makeData(16, 300, 5, 3, 7);
  const s = new ClassStats(3, 5, { momentPrecision: 'float64' });
  await feed(s, data, 64);
  const m = await momentsFromSamples(data.X, data.n, data.d, data.labels, 3, { scatter: true });
  const ms = s.moments();
  assert.ok(rel(withinTrace(m), withinTrace(ms)) < 1e-12);
  for (let i = 0; i < m.scatter!.length; i++) assert.ok(Math.abs(m.scatter![i]! - ms.scatter![i]!) < 1e-10 * Math.abs(ms.scatter![0]!));
});

function bufferFrom(data: Data, perClass: number, seed: number, batch = 50): SampleBuffer {
  const b = new SampleBuffer({ K: data.K, perClass, seed });
  for (let s = 0; s < data.n; s += batch) {
    const e = Math.min(data.n, s + batch);
    const ids = Int32Array.from({ length: e - s }, (_, i) => 1000 + s + i);
    b.add(data.X.subarray(s * data.d, e * data.d), e - s, data.d, data.labels.subarray(s, e), ids);
  }
  return b;
}

test('SampleBuffer is bounded, stratified, deterministic for a seed, and keeps rows with their ids', () => {
  const data = makeData(17, 2000, 3, 4);
  const b1 = bufferFrom(data, 25, 5);
  const m1 = b1.matrix();
  const counts = [0, 0, 0, 0];
  for (const k of data.labels) counts[k]!++;
  assert.equal(m1.n, 100);
  assert.equal(m1.X.length, 100 * 3);
  for (let k = 0; k < 4; k++) assert.equal(m1.labels.filter((l) => l === k).length, Math.min(25, counts[k]!));
  for (let i = 0; i < m1.n; i++) {
    const src = m1.ids[i]! - 1000;
    assert.equal(data.labels[src], m1.labels[i]);
    for (let j = 0; j < 3; j++) assert.equal(m1.X[i * 3 + j], data.X[src * 3 + j]);
  }
  assert.equal(new Set(m1.ids).size, m1.n);
  // Same seed and order, different batching: identical; another seed: a different sample.
  assert.deepEqual(bufferFrom(data, 25, 5, 7).matrix(), m1);
  assert.notDeepEqual(Array.from(bufferFrom(data, 25, 6).matrix().ids), Array.from(m1.ids));
  assert.equal(m1.predictions, undefined);
});

test('SampleBuffer reservoir is uniform over the stream (every position equally likely)', () => {
  // 40 rows of one class, capacity 10: each row is kept with probability 1/4.
  const n = 40;
  const hits = new Array<number>(n).fill(0);
  const reps = 2000;
  const X = Float32Array.from({ length: n }, (_, i) => i);
  for (let seed = 0; seed < reps; seed++) {
    const b = new SampleBuffer({ K: 1, perClass: 10, seed });
    b.add(X, n, 1, new Int32Array(n));
    for (const id of b.matrix().ids) hits[id]!++;
  }
  // Binomial(2000, 1/4): sd ≈ 19.4; 6 sd leaves no room for chance, a biased reservoir fails.
  for (const h of hits) assert.ok(Math.abs(h - reps / 4) < 6 * 19.4, `hits ${h}`);
});

test('SampleBuffer rejects NaN rows and bad labels before changing anything', () => {
  const b = new SampleBuffer({ K: 2, perClass: 4, seed: 0 });
  assert.throws(() => b.add(new Float32Array([1, 2, NaN, 4]), 2, 2, new Int32Array([0, 1])), (e: unknown) => e instanceof NonFiniteFeatureError && e.sampleIndex === 1 && e.featureIndex === 0);
  assert.throws(() => b.add(new Float32Array([1, 2]), 1, 2, new Int32Array([5])), RuntimeFailure);
  assert.equal(b.size, 0);
  assert.equal(b.seen(0), 0);
});

test('SampleBuffer keeps predictions, merges shards into exactly the one-pass buffer in any order, and round-trips JSON', () => {
  const data = makeData(18, 400, 2, 2);
  const preds = Int32Array.from(data.labels, (l) => 1 - l);
  const ids = Int32Array.from({ length: 400 }, (_, i) => i);
  const shard = (rows: number[]): SampleBuffer => {
    const b = new SampleBuffer({ K: 2, perClass: 30, seed: 1 });
    for (const i of rows) b.add(data.X.subarray(i * 2, i * 2 + 2), 1, 2, data.labels.subarray(i, i + 1), ids.subarray(i, i + 1), preds.subarray(i, i + 1));
    return b;
  };
  const whole = shard(Array.from({ length: 400 }, (_, i) => i)).matrix();
  // Independent check of the selection: per class, the 30 smallest (key, index) of its items.
  for (const k of [0, 1]) {
    const items = Array.from(ids).filter((i) => data.labels[i] === k);
    items.sort((a, b) => selectionKey(1, a) - selectionKey(1, b) || a - b);
    assert.deepEqual(Array.from(whole.ids.filter((_, r) => whole.labels[r] === k)), items.slice(0, 30));
  }
  for (let i = 0; i < whole.n; i++) {
    const src = whole.ids[i]!;
    assert.equal(whole.labels[i], data.labels[src]);
    assert.equal(whole.predictions![i], preds[src]);
    assert.equal(whole.X[i * 2], data.X[src * 2]);
  }
  // Uneven, interleaved shards, arriving in reverse and shuffled order, some through JSON.
  const parts = [[] as number[], [] as number[], [] as number[]];
  for (let i = 0; i < 400; i++) parts[i % 7 === 0 ? 0 : i < 250 ? 1 : 2]!.push(i);
  for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
    const [first, ...rest] = order.map((p) => shard(parts[p]!.slice().reverse()));
    for (const b of rest) first!.merge(SampleBuffer.fromJSON(JSON.parse(JSON.stringify(b.toJSON()))));
    assert.deepEqual(first!.matrix(), whole);
    assert.equal(first!.seen(0) + first!.seen(1), 400);
  }
  const b = shard(parts[1]!);
  assert.deepEqual(SampleBuffer.fromJSON(JSON.parse(JSON.stringify(b.toJSON()))).matrix(), b.matrix());
  // Another seed selects other images and cannot be merged in.
  assert.throws(() => b.merge(new SampleBuffer({ K: 2, perClass: 30, seed: 2 })), /seed/);
  const json = b.toJSON();
  json.classes[0]!.keys[0] = json.classes[0]!.keys[0]! + 1;
  assert.throws(() => SampleBuffer.fromJSON(json), /selection key/);
});

test('updates issued without awaiting are applied in order; reads in flight are refused', async () => {
  const data = makeData(19, 300, 4, 3, 20);
  const seq = new ClassStats(3, 4, { momentPrecision: 'float64' });
  await feed(seq, data, 40);
  const par = new ClassStats(3, 4, { momentPrecision: 'float64' });
  const pending: Promise<void>[] = [];
  for (let s = 0; s < data.n; s += 40) {
    const e = Math.min(data.n, s + 40);
    pending.push(par.update(data.X.subarray(s * 4, e * 4), e - s, data.labels.subarray(s, e)));
  }
  assert.throws(() => par.moments(), /in flight/);
  await Promise.all(pending);
  assert.deepEqual(par.moments(), seq.moments());
});
