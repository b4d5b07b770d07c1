/** MD-LSM κ and LP separability on real models: the shipped Fashion-MNIST MLP, the DeepEverest CNN. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { audit } from '../src/pipeline/audit.js';
import { extract } from '../src/pipeline/extract.js';
import { readNpy } from '../src/data/npy.js';
import { lpSeparable } from '../src/metrics/separability/index.js';
import { hasShared, ROOT, sharedPath, tempDir } from './helpers/fixtures.js';

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

test('LP verdicts on a real CNN (DeepEverest logits, 300 MNIST digits per class) are borne out: separating directions separate, inseparable pairs defeat a perceptron', async (t) => {
  if (!hasShared('models/mnist-cnn-deepeverest.onnx') || !hasShared('data/mnist/t10k-images-idx3-ubyte.gz')) {
    t.skip('needs ../shared/assets/models/mnist-cnn-deepeverest.onnx and data/mnist (absent)');
    return;
  }
  const dir = await tempDir();
  const ex = await extract({ model: sharedPath('models/mnist-cnn-deepeverest.onnx'), dataset: sharedPath('data/mnist/t10k-images-idx3-ubyte.gz'), perClass: 300, layers: 'x.3', out: path.join(dir, 'x') });
  const layer = ex.manifest.models[0]!.layers.find((l) => l.id === 'x.3')!;
  const a = await readNpy(path.join(dir, 'x', layer.file!));
  const y = (await readNpy(path.join(dir, 'x/labels.npy'))).data as Int32Array;
  const d = a.shape[1]!;
  const rowsOf = (c: number) => {
    const r: number[] = [];
    for (let i = 0; i < y.length; i++) if (y[i] === c) for (let j = 0; j < d; j++) r.push(Number(a.data[i * d + j]));
    return Float64Array.from(r);
  };
  let separable = 0;
  let inseparable = 0;
  for (let k = 0; k < 10; k++) {
    for (let q = k + 1; q < 10; q++) {
      const A = rowsOf(k);
      const B = rowsOf(q);
      const lp = await lpSeparable(A, B, d, { margin: false });
      assert.notEqual(lp.separable, null, `pair ${k},${q}: ${lp.status}`);
      const side = (X: Float64Array, i: number, w: ArrayLike<number>, b: number) => {
        let s = b;
        for (let j = 0; j < d; j++) s += w[j]! * X[i * d + j]!;
        return s;
      };
      if (lp.separable) {
        separable++;
        let min = Infinity;
        for (let i = 0; i < A.length / d; i++) min = Math.min(min, side(A, i, lp.w!, lp.b!));
        for (let i = 0; i < B.length / d; i++) min = Math.min(min, -side(B, i, lp.w!, lp.b!));
        assert.ok(min > 0, `pair ${k},${q}: the LP's direction leaves a point on the wrong side (${min})`);
      } else {
        inseparable++;
        // A perceptron with a bias: if it ever completes an epoch without a mistake, the pair was separable.
        const w = new Float64Array(d);
        let b = 0;
        let clean = false;
        for (let epoch = 0; epoch < 300 && !clean; epoch++) {
          clean = true;
          for (const [X, s] of [[A, 1], [B, -1]] as const) {
            for (let i = 0; i < X.length / d; i++) {
              if (s * side(X, i, w, b) > 0) continue;
              clean = false;
              for (let j = 0; j < d; j++) w[j]! += s * X[i * d + j]!;
              b += s;
            }
          }
        }
        assert.equal(clean, false, `pair ${k},${q}: the LP said inseparable but a perceptron separated it`);
      }
    }
  }
  t.diagnostic(`${separable} separable, ${inseparable} inseparable pairs`);
  assert.ok(separable > 0 && inseparable > 0, `both verdicts occur (${separable}/${inseparable}), so both checks ran`);
});

test('κ reduced below the reliability floor is marked [kd?] in the summary and the HTML, with its legend; above it, plain [kd]', async () => {
  const dir = await tempDir();
  const run = async (bufferPerClass: number, name: string) =>
    audit({ models: [{ path: path.join(ROOT, 'models/fmnist-mlp/model.json') }], dataset: 'fashion-mnist', perClass: 140, bufferPerClass, metrics: ['mdlsm'], baseline: 'none', out: path.join(dir, name) });
  // 20 rows per class: the guard keeps ⌊0.05 · 40⌋ = 2 of 256 dims, below the floor max(10, 13) = 13.
  const low = await run(20, 'low');
  const k = low.report.models[0]!.layers[0]!.metrics.mdlsm_heldout_kappa!;
  assert.equal((k.detail as { reliable: boolean }).reliable, false);
  const dims = k.basis!.dims!;
  const summary = await readFile(path.join(low.outDir, 'summary.txt'), 'utf8');
  assert.ok(summary.includes(`[${dims}d?]`), summary);
  assert.match(summary, /\[kd\?\] reduced below the reliability floor/);
  const page = await readFile(path.join(low.outDir, 'report.html'), 'utf8');
  assert.ok(page.includes(`[${dims}d?]`) && page.includes('mark unreliable'));
  // 140 rows per class: ⌊0.05 · 280⌋ = 14 dims, above the floor of 13 for the 256-wide layers.
  const high = await run(140, 'high');
  const rows = high.report.models[0]!.layers.map((l) => [l.dim, (l.metrics.mdlsm_heldout_kappa!.detail as { reliable: boolean }).reliable, l.metrics.mdlsm_heldout_kappa!.basis!.dims] as const);
  const plain = await readFile(path.join(high.outDir, 'summary.txt'), 'utf8');
  for (const [, reliable, d] of rows) assert.ok(plain.includes(reliable ? `[${d}d]` : `[${d}d?]`), `${d} dims, reliable ${reliable}`);
  assert.ok(rows.every(([, reliable]) => reliable), JSON.stringify(rows));
  assert.doesNotMatch(plain, /\[kd\?\]/);
});
