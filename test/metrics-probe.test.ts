import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { featureStandardization, fitSoftmaxRegression, linearProbe, probePredict, stratifiedFolds } from '../src/metrics/probe.js';
import { audit } from '../src/pipeline/audit.js';
import { ROOT, tempDir } from './helpers/fixtures.js';
import { stratifiedSplit } from '../src/stats/split.js';
import type { SampleMatrix } from '../src/stats/sample-buffer.js';
import { Rng } from '../src/util/rng.js';

const TEST_SET = path.join(ROOT, 'datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');

/** K Gaussian blobs in d dims, centres `sep`·e_k (all at the origin when sep = 0). */
function blobs(seed: number, perClass: number, d: number, K: number, sep: number): SampleMatrix {
  const rng = new Rng(seed);
  const n = perClass * K;
  const X = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % K;
    labels[i] = k;
    for (let j = 0; j < d; j++) X[i * d + j] = 5 + (j === k ? sep : 0) + rng.normal();
  }
  return { X, n, d, K, labels, ids: Int32Array.from({ length: n }, (_, i) => i) };
}

/**
 * The probe objective and plain full-batch gradient descent in float64, written out directly:
 * L = (1/n)Σ −log softmax(xW + b)_y + (λ/2)‖W‖², step 1/L_smooth.
 */
function plainGd(X: Float32Array, n: number, d: number, y: Int32Array, K: number, lambda: number, iters: number) {
  const W = new Float64Array(d * K);
  const b = new Float64Array(K);
  const evaluate = () => {
    const gW = new Float64Array(d * K);
    const gb = new Float64Array(K);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const z = new Float64Array(K);
      for (let k = 0; k < K; k++) {
        z[k] = b[k]!;
        for (let j = 0; j < d; j++) z[k]! += X[i * d + j]! * W[j * K + k]!;
      }
      const mx = Math.max(...z);
      const lse = mx + Math.log(z.reduce((s, v) => s + Math.exp(v - mx), 0));
      loss += (lse - z[y[i]!]!) / n;
      for (let k = 0; k < K; k++) {
        const g = (Math.exp(z[k]! - lse) - (k === y[i] ? 1 : 0)) / n;
        gb[k]! += g;
        for (let j = 0; j < d; j++) gW[j * K + k]! += X[i * d + j]! * g;
      }
    }
    for (let t = 0; t < d * K; t++) {
      loss += (lambda / 2) * W[t]! * W[t]!;
      gW[t]! += lambda * W[t]!;
    }
    return { loss, gW, gb };
  };
  // Softmax cross-entropy has curvature at most 1/2 per unit ‖x‖²; the bias acts as a feature 1.
  let maxNorm = 1;
  for (let i = 0; i < n; i++) {
    let s = 1;
    for (let j = 0; j < d; j++) s += X[i * d + j]! ** 2;
    maxNorm = Math.max(maxNorm, s);
  }
  const step = 1 / (maxNorm / 2 + lambda);
  let r = evaluate();
  for (let it = 0; it < iters; it++) {
    for (let t = 0; t < d * K; t++) W[t]! -= step * r.gW[t]!;
    for (let k = 0; k < K; k++) b[k]! -= step * r.gb[k]!;
    r = evaluate();
  }
  return { W, b, loss: r.loss, gradMax: Math.max(...r.gW.map(Math.abs), ...r.gb.map(Math.abs)) };
}

function centred(b: Float64Array): number[] {
  const m = b.reduce((s, v) => s + v, 0) / b.length;
  return Array.from(b, (v) => v - m);
}

test('fitted probe equals the optimum found by plain gradient descent (unique for a strictly convex loss)', async () => {
  // Overlapping classes so the optimum is finite and the Hessian well away from singular.
  const m = blobs(61, 15, 3, 3, 1.2);
  const Xs = Float32Array.from(m.X, (v) => v - 5);
  const lambda = 0.05;
  const ref = plainGd(Xs, m.n, m.d, m.labels, m.K, lambda, 20000);
  assert.ok(ref.gradMax < 1e-9, `reference did not converge: ${ref.gradMax}`);
  const fit = await fitSoftmaxRegression(Xs, m.n, m.d, m.labels, m.K, { lambda, gtol: 1e-6 });
  assert.ok(Math.abs(fit.loss - ref.loss) <= 1e-6 * ref.loss, `loss ${fit.loss} vs ${ref.loss}`);
  for (let t = 0; t < fit.W.length; t++) assert.ok(Math.abs(fit.W[t]! - ref.W[t]!) < 1e-4, `W[${t}] ${fit.W[t]} vs ${ref.W[t]}`);
  // Softmax is unchanged by adding a constant to every bias, so compare biases up to that constant.
  const bf = centred(fit.b);
  const br = centred(ref.b);
  bf.forEach((v, k) => assert.ok(Math.abs(v - br[k]!) < 1e-4, `b[${k}] ${v} vs ${br[k]}`));
  // The float64 graph reaches the same optimum far more tightly.
  const fit64 = await fitSoftmaxRegression(Xs, m.n, m.d, m.labels, m.K, { lambda, dtype: 'float64', gtol: 1e-10 });
  assert.equal(fit64.status, 'converged');
  for (let t = 0; t < fit.W.length; t++) assert.ok(Math.abs(fit64.W[t]! - ref.W[t]!) < 1e-7);
});

test('linearProbe end to end (split, training-split standardisation, fit, both accuracies) equals a plain computation', async () => {
  const m = blobs(65, 40, 4, 3, 1.5);
  // Give the features different offsets and scales, so that a missing or wrong standardisation shows.
  for (let i = 0; i < m.n; i++) for (let j = 0; j < m.d; j++) m.X[i * m.d + j] = m.X[i * m.d + j]! * (j + 1) * 3 - 40 * j;
  const lambda = 0.02;
  const r = await linearProbe(m, { seed: 5, lambda, gtol: 1e-7, control: false });
  // The split is the design (seeded), taken as given; everything after it is written out here.
  const split = stratifiedSplit(m.labels, m.K, 0.7, new Rng(5), 'train');
  assert.deepEqual(Array.from(r.split.train), Array.from(split.train));
  const { d, K } = m;
  const mean = new Array<number>(d).fill(0);
  const sd = new Array<number>(d).fill(0);
  for (const i of split.train) for (let j = 0; j < d; j++) mean[j]! += m.X[i * d + j]! / split.train.length;
  for (const i of split.train) for (let j = 0; j < d; j++) sd[j]! += (m.X[i * d + j]! - mean[j]!) ** 2 / split.train.length;
  const std = (rows: Int32Array) => Float32Array.from({ length: rows.length * d }, (_, t) => (m.X[rows[Math.floor(t / d)]! * d + (t % d)]! - mean[t % d]!) / Math.sqrt(sd[t % d]!));
  const Xtr = std(split.train);
  const Xte = std(split.test);
  const ytr = Int32Array.from(split.train, (i) => m.labels[i]!);
  const yte = Int32Array.from(split.test, (i) => m.labels[i]!);
  const ref = plainGd(Xtr, ytr.length, d, ytr, K, lambda, 20000);
  assert.ok(ref.gradMax < 1e-8, `reference did not converge: ${ref.gradMax}`);
  assert.ok(Math.abs(r.fit.loss - ref.loss) <= 1e-6 * ref.loss, `loss ${r.fit.loss} vs ${ref.loss}`);
  const accuracy = (X: Float32Array, y: Int32Array) => {
    let hit = 0;
    for (let i = 0; i < y.length; i++) {
      let best = 0;
      let bestZ = -Infinity;
      for (let k = 0; k < K; k++) {
        let z = ref.b[k]!;
        for (let j = 0; j < d; j++) z += X[i * d + j]! * ref.W[j * K + k]!;
        if (z > bestZ) [best, bestZ] = [k, z];
      }
      if (best === y[i]) hit++;
    }
    return hit / y.length;
  };
  assert.equal(r.trainAccuracy, accuracy(Xtr, ytr));
  assert.equal(r.heldOutAccuracy, accuracy(Xte, yte));
  assert.ok(r.heldOutAccuracy > 0.5 && r.heldOutAccuracy < 1, `a case where accuracy says something: ${r.heldOutAccuracy}`);
});

test('linearly separable blobs: held-out accuracy 1; the shuffled-label control cannot fit its labels', async () => {
  const m = blobs(62, 200, 10, 3, 12);
  const r = await linearProbe(m, { seed: 1 });
  assert.equal(r.heldOutAccuracy, 1);
  assert.equal(r.trainAccuracy, 1);
  assert.equal(r.split.train.length, 420);
  assert.equal(r.split.test.length, 180);
  assert.ok(r.control);
  // With tight clusters the control predicts one shuffled label per cluster, which matches the
  // true label for a random subset of clusters: its held-out accuracy is chance only on average,
  // so here it is only required to be far from the real probe's.
  assert.ok(r.control.heldOutAccuracy < 0.7, `control held-out ${r.control.heldOutAccuracy}`);
  // 140 rows per cluster in 10 dims cannot be fitted to random labels.
  assert.ok(r.control.trainAccuracy < 0.6, `control train ${r.control.trainAccuracy}`);
  assert.deepEqual(
    r.metrics.map((x) => x.name),
    ['probe_train_accuracy', 'probe_heldout_accuracy', 'probe_control_train_accuracy', 'probe_control_heldout_accuracy'],
  );
});

test('identical class distributions: held-out accuracy at chance, memorisation shows in the train/control gap', async () => {
  const m = blobs(63, 300, 10, 3, 0);
  const r = await linearProbe(m, { seed: 2 });
  assert.ok(Math.abs(r.heldOutAccuracy - 1 / 3) < 0.08, `held-out ${r.heldOutAccuracy}`);
  assert.ok(r.trainAccuracy > r.heldOutAccuracy);
  assert.ok(r.control && Math.abs(r.control.heldOutAccuracy - 1 / 3) < 0.08);
  // Few rows per dimension: a probe memorises random labels far beyond chance.
  const small = blobs(64, 12, 40, 3, 0);
  const rs = await linearProbe(small, { seed: 3 });
  assert.ok(rs.control && rs.control.trainAccuracy > 0.9, `control train ${rs.control?.trainAccuracy}`);
});

test('stratified split is seeded, disjoint, covers every row and keeps class proportions', () => {
  const labels = Int32Array.from({ length: 103 }, (_, i) => (i < 50 ? 0 : i < 90 ? 1 : 2));
  const a = stratifiedSplit(labels, 3, 0.7, new Rng(5), 'train');
  assert.deepEqual(stratifiedSplit(labels, 3, 0.7, new Rng(5), 'train'), a);
  assert.notDeepEqual(stratifiedSplit(labels, 3, 0.7, new Rng(6), 'train').train, a.train);
  const all = [...a.train, ...a.test].sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: 103 }, (_, i) => i));
  const trainCounts = [0, 0, 0];
  for (const i of a.train) trainCounts[labels[i]!]!++;
  assert.deepEqual(trainCounts, [35, 28, 9]);
  // A one-row class: in train for the probe, on neither side for held-out κ.
  const one = Int32Array.from([0, 0, 0, 1]);
  assert.deepEqual(Array.from(stratifiedSplit(one, 2, 0.5, new Rng(1), 'train').train).includes(3), true);
  const dropped = stratifiedSplit(one, 2, 0.5, new Rng(1), 'drop');
  assert.equal([...dropped.train, ...dropped.test].includes(3), false);
});

test('cross-fitted probe: stratified folds score every row once; accuracy equals per-fold fits done by hand', async () => {
  const m = blobs(71, 120, 8, 4, 1.2);
  const folds = stratifiedFolds(m.labels, m.K, 5, new Rng(9));
  for (let f = 0; f < 5; f++) {
    for (let k = 0; k < m.K; k++) {
      const c = m.labels.filter((y, i) => y === k && folds[i] === f).length;
      assert.equal(c, 24, `fold ${f} class ${k}`);
    }
  }
  const lambda = 1e-2;
  const r = await linearProbe(m, { folds: 5, seed: 9, lambda, gtol: 1e-8, control: false });
  assert.equal(r.heldOutRows, m.n);
  assert.equal(r.folds, 5);
  // By hand: per fold, standardise on the other folds, fit from zero to a tight tolerance, predict.
  let correct = 0;
  for (let f = 0; f < 5; f++) {
    const train = Int32Array.from({ length: m.n }, (_, i) => i).filter((i) => folds[i] !== f);
    const test = Int32Array.from({ length: m.n }, (_, i) => i).filter((i) => folds[i] === f);
    const st = featureStandardization(m.X, m.d, train);
    const rows = (idx: Int32Array) => Float32Array.from({ length: idx.length * m.d }, (_, t) => (m.X[idx[Math.floor(t / m.d)]! * m.d + (t % m.d)]! - st.mean[t % m.d]!) / st.std[t % m.d]!);
    const fit = await fitSoftmaxRegression(rows(train), train.length, m.d, Int32Array.from(train, (i) => m.labels[i]!), m.K, { lambda, gtol: 1e-8 });
    const p = await probePredict(rows(test), test.length, m.d, fit, m.K);
    test.forEach((i, t) => (correct += p[t] === m.labels[i] ? 1 : 0));
  }
  // The warm start reaches the same strictly convex optimum; at most a tie could flip.
  assert.ok(Math.abs(r.heldOutAccuracy - correct / m.n) <= 1 / m.n, `${r.heldOutAccuracy} vs ${correct / m.n}`);
  assert.ok(r.heldOutAccuracy > 0.4 && r.heldOutAccuracy < 0.95, `an informative case: ${r.heldOutAccuracy}`);
  const held = r.metrics.find((x) => x.name === 'probe_heldout_accuracy')!;
  assert.deepEqual({ n: held.basis!.n, sampled: held.basis!.sampled }, { n: 480, sampled: false });
  assert.match(held.basis!.note!, /5-fold cross-fitted on 480 rows/);
});

test('shuffled-label control: several permutations, mean and population sd of their values; capped rows', async () => {
  const m = blobs(72, 300, 6, 3, 2);
  const r = await linearProbe(m, { seed: 4, controlPermutations: 4, controlMaxRows: 300 });
  assert.ok(r.control);
  assert.equal(r.control.trainValues.length, 4);
  const mean = r.control.heldOutValues.reduce((a, b) => a + b, 0) / 4;
  assert.ok(Math.abs(r.control.heldOutAccuracy - mean) < 1e-15);
  const sd = Math.sqrt(r.control.heldOutValues.reduce((a, b) => a + (b - mean) ** 2, 0) / 4);
  assert.ok(Math.abs(r.control.heldOutSd - sd) < 1e-15);
  assert.ok(new Set(r.control.trainValues).size > 1, 'the permutations differ');
  const c = r.metrics.find((x) => x.name === 'probe_control_heldout_accuracy')!;
  assert.equal(c.detail!.nTrain, 300);
  assert.deepEqual(c.detail!.values, r.control.heldOutValues);
  assert.equal(c.detail!.sd, r.control.heldOutSd);
});

test('a held-out set under 50 rows per class gets a warning; enough rows do not', async () => {
  const small = await linearProbe(blobs(73, 60, 5, 3, 2), { seed: 1, control: false });
  assert.equal(small.minHeldOutPerClass, 18);
  assert.match(String(small.metrics[1]!.detail!.warning), /only 18 held-out rows/);
  assert.match(small.metrics[1]!.basis!.note!, /only 18 held-out rows/);
  const big = await linearProbe(blobs(74, 60, 5, 3, 2), { seed: 1, control: false, folds: 5 });
  assert.equal(big.minHeldOutPerClass, 60);
  assert.equal(big.metrics[1]!.detail!.warning, undefined);
});

/** Default audit probe on all 10,000 Fashion-MNIST test images: the head's input reads what the head reads. */
async function probeVsModel(t: { skip(m: string): void; diagnostic(m: string): void }, model: string, headInput: string): Promise<void> {
  if (!existsSync(model) || !existsSync(TEST_SET)) {
    t.skip(`needs ${model} and datasets/fashion-mnist`);
    return;
  }
  const dir = await tempDir();
  const res = await audit({ models: [{ path: model }], dataset: 'fashion-mnist', metrics: ['probe'], out: path.join(dir, 'run') });
  const m = res.report.models[0]!;
  const layer = m.layers.find((l) => l.id === headInput)!;
  const probe = layer.metrics.probe_heldout_accuracy!;
  const accuracy = m.accuracy!.value!;
  t.diagnostic(`${model}: probe on ${headInput} ${probe.value} vs model ${accuracy}; control ${layer.metrics.probe_control_heldout_accuracy!.value} ± ${String(layer.metrics.probe_control_heldout_accuracy!.detail!.sd)}`);
  assert.equal(m.accuracy!.detail!.n, 10000);
  assert.equal(probe.detail!.nHeldOut, 10000, 'every image scored held-out');
  assert.ok(Math.abs(probe.value! - accuracy) <= 0.01, `probe ${probe.value} vs model ${accuracy}`);
  assert.equal((layer.metrics.probe_control_heldout_accuracy!.detail!.values as number[]).length, 3);
}

test('shipped MLP: held-out probe on dense_2 within 1 point of the model accuracy (default options, 10,000 images)', async (t) => {
  await probeVsModel(t, path.join(ROOT, 'models/fmnist-mlp/model.onnx'), 'dense_2');
});

test('shipped CNN: held-out probe on dense_1 within 1 point of the model accuracy', async (t) => {
  await probeVsModel(t, path.join(ROOT, 'models/fmnist-cnn/model.onnx'), 'dense_1');
});

test('PyTorch-exported CNN (test/fixtures/torch-fmnist-cnn): held-out probe on fc1 within 1 point of the model accuracy', async (t) => {
  await probeVsModel(t, path.join(ROOT, 'test/fixtures/torch-fmnist-cnn/model.onnx'), '/Relu_2_output_0');
});
