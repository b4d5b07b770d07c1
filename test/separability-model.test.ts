/**
 * MD-LSM κ on a real trained model: a 784→128→64→10 ReLU MLP trained with TF.js for 3 epochs on
 * 6,000 Fashion-MNIST training images, probed on 100 held-out test images per class.
 *
 * What is asserted: the last hidden layer is more linearly separable than the raw pixels, in
 * held-out κ (one-vs-one mean and worst pair). The first-vs-last hidden comparison was tried
 * first and is unstable at this size: after 3 epochs both hidden layers are within ~0.002 of each
 * other in held-out mean κ and their order flips with the PCA width and the sample count, so it
 * is only reported (diagnostics), not asserted.
 *
 * Width: all three are compared at the same PCA width, 10 = 0.05·(m+n). At the guard's default
 * ¼ (50 dims for pairs of 200 rows) in-sample κ is ≈ 0.999 for every layer and κ_null ≈ 0.84:
 * the optimism swamps the differences between layers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { openDataset } from '../src/data/open.js';
import { preprocess } from '../src/data/preprocess.js';
import { mdlsm, type MdlsmResult } from '../src/metrics/separability/index.js';
import { loadTf } from '../src/runtime/backend.js';
import type { SampleMatrix } from '../src/stats/sample-buffer.js';
import { Rng } from '../src/util/rng.js';
import { FMNIST_SYSTEM } from './helpers/fixtures.js';

function samples(X: Float32Array, d: number, labels: Int32Array): SampleMatrix {
  const n = labels.length;
  return { X, n, d, K: 10, labels, ids: Int32Array.from({ length: n }, (_, i) => i) };
}

test('trained MLP: held-out κ (mean and worst pair) is higher at the last hidden layer than on the pixels', async (t) => {
  if (!existsSync(FMNIST_SYSTEM)) return t.skip(`needs Fashion-MNIST in ${FMNIST_SYSTEM} (absent; apt-get install dataset-fashion-mnist)`);
  const { tf } = await loadTf();
  const spec = { scale: 255, reshape: [784] };

  const train = await openDataset('fashion-mnist:train');
  const order = Int32Array.from({ length: 6000 }, (_, i) => i);
  new Rng(1).shuffle(order);
  const tb = await train.read(order);
  const xTrain = preprocess(tb, spec).data;

  // 100 test images per class, the first ones in file order: a fixed, stratified held-out set.
  const testSet = await openDataset('fashion-mnist:test');
  const pick: number[] = [];
  const seen = new Array<number>(10).fill(0);
  for (let i = 0; i < testSet.labels.length && pick.length < 1000; i++) {
    const y = testSet.labels[i]!;
    if (seen[y]! < 100) {
      seen[y]!++;
      pick.push(i);
    }
  }
  const hb = await testSet.read(Int32Array.from(pick));
  const xHeld = preprocess(hb, spec).data;

  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 128, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const xs = tf.tensor2d(xTrain, [6000, 784]);
  const ys = tf.tensor1d(Float32Array.from(tb.labels), 'float32');
  const hist = await model.fit(xs, ys, { epochs: 3, batchSize: 64, shuffle: false, verbose: 0 });
  const acc = hist.history.acc ?? hist.history.accuracy ?? [];
  xs.dispose();
  ys.dispose();

  const hidden = [model.layers[0]!.output, model.layers[1]!.output].filter((o): o is ReturnType<typeof tf.input> => !Array.isArray(o));
  const probe = tf.model({ inputs: model.inputs, outputs: hidden });
  const xh = tf.tensor2d(xHeld, [1000, 784]);
  const pred = probe.predict(xh);
  const outs = Array.isArray(pred) ? pred : [pred];
  const first = (await outs[0]!.data()) as Float32Array;
  const last = (await outs[1]!.data()) as Float32Array;
  xh.dispose();
  outs.forEach((o) => o.dispose());
  model.dispose();

  const labels = hb.labels;
  const opts = { seed: 0, permutations: 1, maxDimFraction: 0.05 };
  const rPix = await mdlsm(samples(xHeld, 784, labels), opts);
  const r1 = await mdlsm(samples(first, 128, labels), opts);
  const r2 = await mdlsm(samples(last, 64, labels), opts);
  const line = (name: string, r: MdlsmResult): string =>
    `${name}: κ mean ${r.mean!.toFixed(4)} worst ${r.worst!.kappa.toFixed(4)} (${r.worst!.k},${r.worst!.l}); ` +
    `held-out mean ${r.heldOut!.mean!.toFixed(4)} worst ${r.heldOut!.worst!.kappa.toFixed(4)} (${r.heldOut!.worst!.k},${r.heldOut!.worst!.l}); ` +
    `κ_null ${r.null!.mean!.toFixed(4)}; ${r.reduction.reduction} (rank ${r.reduction.whitenedRank})`;
  t.diagnostic(`train accuracy per epoch: ${acc.map((a) => Number(a).toFixed(3)).join(', ')}`);
  t.diagnostic(line('pixels', rPix));
  t.diagnostic(line('hidden 1 (128)', r1));
  t.diagnostic(line('hidden 2 (64)', r2));

  assert.ok(Number(acc[acc.length - 1]) > 0.75, `the model should have learned (train accuracy ${acc.join(', ')})`);
  for (const r of [rPix, r1, r2]) assert.equal(r.reduction.reduction, 'pca:10');
  assert.ok(r2.heldOut!.mean! > rPix.heldOut!.mean!, `held-out mean: last ${r2.heldOut!.mean} vs pixels ${rPix.heldOut!.mean}`);
  assert.ok(r2.heldOut!.worst!.kappa > rPix.heldOut!.worst!.kappa, `held-out worst: last ${r2.heldOut!.worst!.kappa} vs pixels ${rPix.heldOut!.worst!.kappa}`);
  // Every representation sits far above its label-permutation baseline.
  for (const r of [rPix, r1, r2]) assert.ok(r.heldOut!.mean! > r.null!.mean! + 0.2);
});
