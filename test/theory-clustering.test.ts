/**
 * Weight clustering and linear decision boundaries (SCIENCE.md §5): the measurements on
 * hand-built weights against direct computations, a small training run on a linear teacher, the
 * refusals (non-homogeneous activations, inseparable data), and `theory clustering` end to end
 * in a child process through a tiny yargs driver around `clusteringCommand`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../src/errors.js';
import {
  agreementRegime,
  checkLinearlySeparable,
  clusterMeasures,
  clusteringActivation,
  linearAgreement,
  linearTeacherData,
  netOutputs,
  trainClustering,
  type TwoLayerNet,
} from '../src/theory/clustering/index.js';
import { Rng } from '../src/util/rng.js';
import { tempDir } from './helpers/fixtures.js';
import { runTheory, type CliRun } from './helpers/theory-cli.js';

function gaussian(n: number, d: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n * d }, () => rng.normal());
}

/** Groups of neurons whose folded weights |v_j| w_j are positive multiples of u (G+) and u' (G−). */
function collinearNet(d: number, alpha: number, seed: number): TwoLayerNet {
  const rng = new Rng(seed);
  const u = Float64Array.from({ length: d }, () => rng.normal());
  const u2 = Float64Array.from({ length: d }, () => rng.normal());
  const vs = [0.3, 1.7, 0.05, 2.2, -0.4, -1.1, -3, -0.02, -0.9];
  const m = vs.length;
  const W = new Float64Array(m * d);
  vs.forEach((vj, j) => {
    const c = 0.1 + 2 * rng.next(); // w̃_j = c·u, so w_j = c·u/|v_j|
    const dir = vj > 0 ? u : u2;
    for (let k = 0; k < d; k++) W[j * d + k] = (c * dir[k]!) / Math.abs(vj);
  });
  return { d, m, W, v: Float64Array.from(vs), alpha };
}

test('exactly collinear groups with α > 0: coherence 1, cosines 1, and sign N(x) = sign(v_linᵀx) on every random input', () => {
  for (const alpha of [0.01, 0.1, 0.5]) {
    const net = collinearNet(7, alpha, 3);
    const cm = clusterMeasures(net);
    assert.equal(cm.plus.size, 4);
    assert.equal(cm.minus.size, 5);
    for (const g of [cm.plus, cm.minus]) {
      assert.ok(Math.abs(g.coherence! - 1) < 1e-12, `coherence ${g.coherence}`);
      assert.ok(Math.abs(g.meanCosine! - 1) < 1e-12, `cosine ${g.meanCosine}`);
    }
    const X = gaussian(5000, 7, 11);
    assert.equal(linearAgreement(net, X, 5000), 1);
    // N(x) = σ(Uᵀx) − σ(Vᵀx) exactly (up to rounding) for U, V the group sums.
    const out = netOutputs(net, X.subarray(0, 20 * 7), 20);
    const s = (z: number) => (z > 0 ? z : alpha * z);
    for (let i = 0; i < 20; i++) {
      let a = 0;
      let b = 0;
      for (let k = 0; k < 7; k++) {
        a += cm.plus.sum[k]! * X[i * 7 + k]!;
        b += cm.minus.sum[k]! * X[i * 7 + k]!;
      }
      assert.ok(Math.abs(out[i]! - (s(a) - s(b))) < 1e-9 * (1 + Math.abs(out[i]!)));
    }
    // Collinear groups are in the agreement regime on every point.
    assert.equal(agreementRegime(net, X, 5000).holds, true);
  }
  // The same weights with α = 0: wherever both groups are off N(x) = 0 while v_linᵀx ≠ 0.
  const relu = collinearNet(7, 0, 3);
  const X = gaussian(5000, 7, 11);
  const agreeRelu = linearAgreement(relu, X, 5000);
  assert.ok(agreeRelu < 0.95, `ReLU agreement ${agreeRelu}`);
  // A failable check: two non-collinear directions per group bend the boundary.
  const bent: TwoLayerNet = { d: 2, m: 3, W: Float64Array.from([1, 0, 0, 1, 1, 1]), v: Float64Array.from([1, 1, -0.9]), alpha: 0.1 };
  const agreeBent = linearAgreement(bent, gaussian(4000, 2, 5), 4000);
  assert.ok(agreeBent < 0.99, `bent agreement ${agreeBent}`);
});

test('coherence, mean cosine and v_lin of non-collinear weights match a direct computation', () => {
  // Closed form: G+ folded weights (1,0) and (0,2) (v = 2 and 0.5), G− folded (3,0) and (0,−1).
  const small: TwoLayerNet = { d: 2, m: 5, W: Float64Array.from([0.5, 0, 0, 4, -1, 0, 0, 0.5, 7, 7]), v: Float64Array.from([2, 0.5, -3, -2, 0]), alpha: 0.2 };
  const cs = clusterMeasures(small);
  assert.equal(cs.plus.size, 2);
  assert.equal(cs.minus.size, 2);
  assert.ok(Math.abs(cs.plus.coherence! - Math.sqrt(5) / 3) < 1e-15);
  assert.ok(Math.abs(cs.plus.meanCosine! - 1.5 / Math.sqrt(5)) < 1e-15);
  // G−: (−3, 0) and (0, 1) folded (w = (−1,0)·3 and (0,0.5)·2); sum (−3, 1).
  assert.ok(Math.abs(cs.minus.coherence! - Math.sqrt(10) / 4) < 1e-15);
  assert.deepEqual(Array.from(cs.vLin), [1 + 3, 2 - 1]);

  // Random weights, checked against a direct computation written out here.
  const rng = new Rng(7);
  const d = 5;
  const m = 12;
  const W = Float64Array.from({ length: m * d }, () => rng.normal());
  const v = Float64Array.from({ length: m }, () => rng.normal());
  const cm = clusterMeasures({ d, m, W, v, alpha: 0.1 });
  for (const sign of [1, -1]) {
    const rows: number[][] = [];
    for (let j = 0; j < m; j++) if (Math.sign(v[j]!) === sign) rows.push(Array.from({ length: d }, (_, k) => Math.abs(v[j]!) * W[j * d + k]!));
    const sum = Array.from({ length: d }, (_, k) => rows.reduce((s, r) => s + r[k]!, 0));
    const norm = (x: number[]) => Math.hypot(...x);
    const centroid = sum.map((x) => x / rows.length);
    const coh = norm(sum) / rows.reduce((s, r) => s + norm(r), 0);
    const cos = rows.reduce((s, r) => s + r.reduce((t, x, k) => t + x * centroid[k]!, 0) / (norm(r) * norm(centroid)), 0) / rows.length;
    const g = sign === 1 ? cm.plus : cm.minus;
    assert.equal(g.size, rows.length);
    assert.ok(Math.abs(g.coherence! - coh) < 1e-12, `${g.coherence} vs ${coh}`);
    assert.ok(Math.abs(g.meanCosine! - cos) < 1e-12, `${g.meanCosine} vs ${cos}`);
    assert.ok(coh < 0.9, 'random weights are far from collinear');
  }
  // v_lin = Σ_{G+} w̃ − Σ_{G−} w̃ = Σ_j v_j w_j.
  for (let k = 0; k < d; k++) {
    let s = 0;
    for (let j = 0; j < m; j++) s += v[j]! * W[j * d + k]!;
    assert.ok(Math.abs(cm.vLin[k]! - s) < 1e-12);
  }
});

test('training on a linear teacher: coherence and linear agreement rise, accuracy reaches 1, the agreement regime sets in', async () => {
  const opts = { d: 10, m: 20, n: 200, nTest: 200, nRandom: 2000, epochs: 150, every: 10, seed: 1 };
  const res = await trainClustering(opts);
  const { initial: i, final: e } = res;
  assert.equal(res.separability.separable, true);
  assert.ok(res.separability.minSlack > 0);
  assert.equal(e.trainAccuracy, 1);
  assert.ok(e.testAccuracy! > 0.95, `test accuracy ${e.testAccuracy}`);
  assert.ok(e.coherencePlus! > i.coherencePlus! + 0.3 && e.coherencePlus! > 0.99, `C+ ${i.coherencePlus} → ${e.coherencePlus}`);
  assert.ok(e.coherenceMinus! > i.coherenceMinus! + 0.3 && e.coherenceMinus! > 0.99, `C− ${i.coherenceMinus} → ${e.coherenceMinus}`);
  assert.ok(e.meanCosinePlus! > i.meanCosinePlus! + 0.3, `cos+ ${i.meanCosinePlus} → ${e.meanCosinePlus}`);
  assert.ok(e.agreementRandom > i.agreementRandom + 0.03 && e.agreementRandom > 0.99, `random agreement ${i.agreementRandom} → ${e.agreementRandom}`);
  assert.ok(e.teacherCosine! > 0.95, `cos(v_lin, w*) ${e.teacherCosine}`);
  assert.equal(i.regimeFraction, 0);
  assert.ok(res.regimeFirstStep !== null && res.regimeFirstStep > 0 && res.regimeFirstStep < 150, `regime first at ${res.regimeFirstStep}`);
  assert.ok(res.regimeStableFrom !== null);
  assert.equal(e.regimeFraction, 1);
  assert.deepEqual(res.warnings, []);
  assert.deepEqual(res.records.map((r) => r.step), Array.from({ length: 16 }, (_, k) => 10 * k));
  // The final weights reproduce the last record.
  const data = linearTeacherData({ d: 10, n: 200, seed: 1 });
  assert.equal(agreementRegime(res.net, data.train.X, 200).holds, true);
  assert.equal(linearAgreement(res.net, data.train.X, 200), e.agreementTrain);
  // Control: a large initialisation fits the data without clustering.
  const lazy = await trainClustering({ ...opts, initScale: 1, epochs: 100, skipSeparabilityCheck: true });
  assert.equal(lazy.final.trainAccuracy, 1);
  assert.ok(lazy.final.coherencePlus! < 0.8, `large-init C+ ${lazy.final.coherencePlus}`);
  // Same seed, same run.
  const again = await trainClustering({ ...opts, epochs: 20 });
  const first = await trainClustering({ ...opts, epochs: 20 });
  assert.deepEqual(again.records, first.records);
});

test('ReLU (α = 0) runs with a warning; non-homogeneous activations and inseparable data are refused', async () => {
  const small = { d: 6, m: 8, n: 60, nTest: 0, nRandom: 200, epochs: 20, seed: 2 };
  for (const a of [{ activation: 'relu' }, { activation: 'leaky-relu', alpha: 0 }]) {
    const res = await trainClustering({ ...small, ...a });
    assert.equal(res.alpha, 0);
    assert.ok(res.warnings.some((w) => /α = 0.*no guarantee/s.test(w)), res.warnings.join('\n'));
  }
  assert.deepEqual(clusteringActivation('leaky_relu').warnings, []);
  assert.equal(clusteringActivation('leaky', 0.3).alpha, 0.3);
  for (const name of ['tanh', 'sigmoid', 'gelu', 'elu', 'quadratic']) {
    await assert.rejects(trainClustering({ ...small, activation: name }), (e: unknown) => e instanceof UsageError && /not positively homogeneous|degree 2/.test(e.message), name);
  }
  assert.throws(() => clusteringActivation('cosine'), (e: unknown) => e instanceof UsageError && /unknown activation/.test(e.message));
  assert.throws(() => clusteringActivation('leaky-relu', -0.1), UsageError);
  assert.throws(() => clusteringActivation('relu', 0.2), UsageError);
  // 10% flipped labels among 200 points in R^10: proven inseparable by the LP, refused.
  await assert.rejects(
    trainClustering({ d: 10, n: 200, labelNoise: 0.1, epochs: 5, seed: 1 }),
    (e: unknown) => e instanceof UsageError && /needs linearly separable data/.test(e.message) && /20 labels were flipped/.test(e.message),
  );
  // x and −x with the same label cannot be split by a hyperplane through the origin.
  const X = Float64Array.from([1, 2, -1, -2, 0.5, -1, 3, 3]);
  const y = Int8Array.from([1, 1, -1, -1]);
  assert.equal((await checkLinearlySeparable({ X, y, n: 4 }, 2)).separable, false);
  await assert.rejects(trainClustering({ data: { d: 2, train: { X, y, n: 4 } }, m: 4, epochs: 2 }), /needs linearly separable data/);
  const sep = await checkLinearlySeparable({ X: Float64Array.from([1, 2, 2, 1, -1, -1, -3, 0.5]), y, n: 4 }, 2);
  assert.equal(sep.separable, true);
  assert.ok(sep.minSlack > 0);
});

function clustering(args: string[]): CliRun {
  return runTheory(['clustering', ...args]);
}

test('theory clustering CLI: --json, --out files, the table, and exit codes', async () => {
  const dir = await tempDir();
  const out = path.join(dir, 'run');
  const small = ['--d', '8', '--m', '12', '--n', '120', '--epochs', '100', '--every', '20', '--n-random', '500'];
  const r = clustering([...small, '--json', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const res = (JSON.parse(r.stdout) as { result: unknown }).result as { final: { trainAccuracy: number; coherencePlus: number; agreementRandom: number }; initial: { coherencePlus: number }; records: unknown[]; regimeFirstStep: number | null; net: { W: number[] } };
  assert.equal(res.final.trainAccuracy, 1);
  assert.ok(res.final.coherencePlus > res.initial.coherencePlus + 0.3);
  assert.equal(res.records.length, 6);
  assert.equal(res.net.W.length, 8 * 12);
  assert.ok(res.regimeFirstStep !== null);
  const file = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as typeof res;
  assert.deepEqual(file.records, res.records);
  const csv = (await readFile(path.join(out, 'series.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv.length, 7);
  assert.match(csv[0]!, /^step,loss,train_accuracy,test_accuracy,coherence_plus,coherence_minus,mean_cosine_plus,mean_cosine_minus,agreement_train,agreement_test,agreement_random,regime_fraction/);
  // Never over an existing folder without --force.
  assert.equal(clustering([...small, '--out', out, '-q']).code, 2);

  const table = clustering([...small, '--activation', 'relu']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /agree random/);
  assert.match(table.stdout, /coherence C\+ [\d.]+ → [\d.]+/);
  assert.match(table.stderr, /warning: α = 0/);

  for (const args of [['--activation', 'tanh'], ['--d', '0'], ['--alpha', '-1'], ['--bogus', '1'], ['--output-layer', 'frozen'], ['--lr', 'fast']]) {
    const bad = clustering([...small, ...args, '--out', path.join(dir, 'never')]);
    assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, /^layerprobe: error: /, bad.stderr);
  }
  const inseparable = clustering(['--d', '10', '--n', '200', '--label-noise', '0.1', '--out', path.join(dir, 'never')]);
  assert.equal(inseparable.code, 2, inseparable.stderr);
  assert.match(inseparable.stderr, /needs linearly separable data/);
  assert.ok(!existsSync(path.join(dir, 'never')));
});
