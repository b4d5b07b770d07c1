/** MD-LSM κ and LP separability as audit metrics, end to end on the shipped Fashion-MNIST MLP. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { audit } from '../src/pipeline/audit.js';
import { ROOT, tempDir } from './helpers/fixtures.js';

const MLP = path.join(ROOT, 'models/fmnist-mlp/model.onnx');
const TEST_SET = path.join(ROOT, 'datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');

test('held-out κ (mean and worst pair) is higher at the last hidden layer than at the first', async (t) => {
  if (!existsSync(MLP) || !existsSync(TEST_SET)) {
    t.skip('needs models/fmnist-mlp and datasets/fashion-mnist (shipped with the project)');
    return;
  }
  const dir = await tempDir();
  const res = await audit({ models: [{ path: MLP }], dataset: 'fashion-mnist', perClass: 300, bufferPerClass: 300, metrics: ['mdlsm', 'separable'], out: path.join(dir, 'run') });
  const layers = res.report.models[0]!.layers;
  const first = layers[0]!.metrics;
  const last = layers[layers.length - 1]!.metrics;
  const worst = (m: typeof first) => (m.mdlsm_heldout_kappa!.detail!['worst'] as { kappa: number }).kappa;
  t.diagnostic(`held-out κ ${first.mdlsm_heldout_kappa!.value} → ${last.mdlsm_heldout_kappa!.value}; worst ${worst(first)} → ${worst(last)}; null ${first.mdlsm_null_kappa!.value}; LP ${first.lp_separable_fraction!.value} → ${last.lp_separable_fraction!.value}`);
  assert.ok(last.mdlsm_heldout_kappa!.value! > first.mdlsm_heldout_kappa!.value!, 'mean held-out κ rises');
  assert.ok(worst(last) > worst(first), 'worst-pair held-out κ rises');
  for (const m of [first, last]) {
    assert.ok(m.mdlsm_kappa!.value! >= m.mdlsm_heldout_kappa!.value! - 0.02, 'in-sample κ is optimistic relative to held-out');
    assert.ok(m.mdlsm_null_kappa!.value! < m.mdlsm_heldout_kappa!.value! - 0.2, 'the permutation baseline sits well below');
    assert.ok(m.mdlsm_null_kappa!.value! > 0.5, 'and above ½: maximising over w is optimistic');
    // κ = 1 exactly for the pairs the LP calls separable, and < 1 otherwise.
    const kappa = m.mdlsm_kappa!.detail!['matrix'] as (number | null)[][];
    const lp = (m.lp_separable_fraction!.detail!['matrix'] as ({ separable: boolean } | null)[][]).map((row) => row.map((c) => c?.separable ?? null));
    let separable = 0;
    for (let i = 0; i < kappa.length; i++) {
      for (let j = i + 1; j < kappa.length; j++) {
        if (lp[i]![j]) separable++;
        if (!lp[i]![j]) assert.ok(kappa[i]![j]! < 1, `pair ${i},${j}: LP infeasible but κ = 1`);
      }
    }
    assert.equal(separable / ((kappa.length * (kappa.length - 1)) / 2), m.lp_separable_fraction!.value);
  }
});
