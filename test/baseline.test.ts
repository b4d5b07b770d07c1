/**
 * The audit's random-layer baseline (docs/metrics/baseline.md): intervals over draws against a
 * plain computation and a printed t table, the theory's verdict on union-of-subspaces data of known
 * r (LP-separable above D*(r), not below D*(r/2)), the interval shrinking with more draws, the
 * shipped CNN's trained-minus-random probe excess, and the spine never importing theory/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summariseDraws, studentTQuantile } from '../src/metrics/baseline/draws.js';
import { predictedThreshold, theoryVerdict, type RankAtEnergy } from '../src/metrics/baseline/threshold.js';
import { unionOfSubspaces } from '../src/metrics/baseline/subspaces.js';
import { baselineMetrics } from '../src/pipeline/baseline.js';
import { audit } from '../src/pipeline/audit.js';
import type { SampleMatrix } from '../src/stats/sample-buffer.js';
import type { MetricResult } from '../src/metrics/types.js';
import { tempDir } from './helpers/fixtures.js';
import { loadTf } from '../src/runtime/backend.js';
import { saveToDir } from '../src/runtime/tfjs-io.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Two-sided 95% critical values t_{0.975, ν} from a printed Student-t table. */
const T_TABLE: [number, number][] = [
  [1, 12.706],
  [2, 4.303],
  [4, 2.776],
  [9, 2.262],
  [29, 2.045],
];

test('t quantiles match the printed table; the draws interval is mean ± t·s/√n from a plain loop', () => {
  for (const [nu, t] of T_TABLE) assert.ok(Math.abs(studentTQuantile(0.975, nu) - t) < 1e-3, `ν=${nu}: ${studentTQuantile(0.975, nu)} vs ${t}`);
  const v = [0.71, 0.74, 0.69, 0.73, 0.72];
  let m = 0;
  for (const x of v) m += x / v.length;
  let ss = 0;
  for (const x of v) ss += (x - m) ** 2;
  const half = (2.776 * Math.sqrt(ss / 4)) / Math.sqrt(5);
  const s = summariseDraws([...v, NaN]);
  assert.equal(s.n, 5, 'a non-finite draw is dropped');
  assert.ok(Math.abs(s.mean - m) < 1e-12);
  assert.ok(Math.abs(s.ci![0] - (m - half)) < 1e-4 && Math.abs(s.ci![1] - (m + half)) < 1e-4);
  assert.equal(summariseDraws([0.5]).ci, null, 'one draw: no interval');
});

function level(energy: number, rHat: number, width: number, d: number): RankAtEnergy {
  const dStar = predictedThreshold(rHat, 'relu')!;
  return { energy, rHat, perClass: [rHat], dStar, ratio: width / dStar, subspacesFit: 2 * rHat <= d };
}

test('verdict rules: r̂ close to the input width, a random layer separating below D*, tanh', () => {
  const wide = theoryVerdict({ width: 64, inputDim: 64, activation: 'relu', energy: 0.95, levels: [level(0.8, 15, 64, 64), level(0.95, 33, 64, 64)], random: {} });
  assert.equal(wide.kind, 'assumption does not hold');
  assert.match(wide.text, /r̂ close to the input width/);
  assert.match(wide.text, /at 80% energy r̂ = 15 fits/, 'names the highest level at which the subspaces fit');
  const sep = theoryVerdict({ width: 256, inputDim: 784, activation: 'relu', energy: 0.95, levels: [level(0.95, 97, 256, 784)], random: { probeHeldoutAccuracy: 0.81, probeChance: 0.1 } });
  assert.equal(sep.kind, 'assumption does not hold');
  assert.match(sep.text, /random layer already separates/);
  // LP outranks the probe: few separable pairs, so the prediction stands.
  const lp = theoryVerdict({ width: 256, inputDim: 784, activation: 'relu', energy: 0.95, levels: [level(0.95, 97, 256, 784)], random: { lpSeparableFraction: 0.1, probeHeldoutAccuracy: 0.81, probeChance: 0.1 } });
  assert.equal(lp.kind, 'below threshold');
  const tanh = theoryVerdict({ width: 64, inputDim: 784, activation: 'tanh', energy: 0.95, levels: [{ ...level(0.95, 5, 64, 784), dStar: null, ratio: null }], random: {} });
  assert.equal(tanh.kind, 'no prediction');
});

/** K union-of-subspaces classes of dimension r in R^d as a sample matrix. */
function uos(r: number, d: number, K: number, n: number, seed: number): SampleMatrix {
  const u = unionOfSubspaces({ d, r, K, n, seed });
  return { X: Float32Array.from(u.X), n: u.n, d, K, labels: u.labels, ids: Int32Array.from({ length: u.n }, (_, i) => i) };
}

const byName = (rs: MetricResult[]) => Object.fromEntries(rs.map((m) => [m.name, m]));

test('union of subspaces with known r: LP-separable above D*(r) ("above threshold"), not below D*(r/2) ("below")', async () => {
  const r = 3;
  const d = 20;
  const input = uos(r, d, 3, 600, 11);
  const dStar = predictedThreshold(r, 'relu')!;
  const above = Math.ceil(2 * dStar);
  const below = Math.floor(predictedThreshold(r / 2, 'relu')!);
  const run = async (width: number) => byName(await baselineMetrics(input, input, width, 'relu', [], { seed: 0, groups: ['separable'], draws: 5 }));
  const hi = await run(above);
  const lo = await run(below);
  const hiDetail = hi.baseline_width_ratio!.detail as { rHat: number; verdict: string; verdictText: string; inset: { points: { probability: number; ratio: number }[] } };
  const loDetail = lo.baseline_width_ratio!.detail as { rHat: number; verdict: string; verdictText: string };
  assert.equal(hiDetail.rHat, r, 'noise-free classes: the 95%-energy rank is the true r');
  assert.ok(hi.baseline_lp_separable_fraction!.value >= 0.9, `width ${above}: LP fraction ${hi.baseline_lp_separable_fraction!.value}`);
  assert.equal(hiDetail.verdict, 'above threshold');
  assert.match(hiDetail.verdictText, /^above threshold/);
  assert.ok(lo.baseline_lp_separable_fraction!.value <= 0.1, `width ${below}: LP fraction ${lo.baseline_lp_separable_fraction!.value}`);
  assert.equal(loDetail.verdict, 'below threshold');
  assert.match(loDetail.verdictText, /^below threshold/);
  // The inset comes from theory phase: P(separable) rises from the narrowest to the widest grid width.
  const pts = hiDetail.inset.points;
  assert.ok(pts[0]!.probability <= 0.2 && pts[pts.length - 1]!.probability >= 0.8, JSON.stringify(pts));
});

test('the interval over draws shrinks as draws grow', async () => {
  const input = uos(4, 24, 3, 120, 5);
  const width = async (draws: number) => {
    const m = byName(await baselineMetrics(input, input, 30, 'relu', [], { seed: 1, groups: ['probe', 'geometry'], draws }));
    return ['probe_heldout_accuracy', 'discrimination'].map((k) => {
      const ci = m[`baseline_${k}`]!.ci!;
      return ci[1] - ci[0];
    });
  };
  const few = await width(3);
  const many = await width(15);
  for (const [i, w] of many.entries()) assert.ok(w < few[i]!, `metric ${i}: ${w} with 15 draws vs ${few[i]} with 3`);
});

test('shipped CNN: the trained probe at the last hidden layer beats its random twins, interval excluding 0', async () => {
  const dir = await tempDir();
  const res = await audit({ models: [{ path: path.join(ROOT, 'models/fmnist-cnn/model.json') }], dataset: 'fashion-mnist', perClass: 100, metrics: ['probe'], out: path.join(dir, 'cnn') });
  assert.equal(res.report.options.baseline, 'random-layer', 'on by default');
  const last = res.report.models[0]!.layers.at(-1)!;
  const ex = last.metrics.excess_probe_heldout_accuracy!;
  const base = last.metrics.baseline_probe_heldout_accuracy!;
  const values = (base.detail as { values: number[] }).values;
  assert.equal(values.length, 5, 'five draws by default');
  // Mean and interval recomputed plainly from the draws (t_{0.975,4} = 2.776 from the table).
  const mean = values.reduce((a, b) => a + b, 0) / 5;
  const sd = Math.sqrt(values.reduce((a, x) => a + (x - mean) ** 2, 0) / 4);
  // The excess takes the trained layer's probe under the random layers' protocol on the same
  // buffered rows (like with like); it reads close to the reported cross-fitted probe.
  const T = (ex.detail as { trained: number }).trained;
  assert.ok(Math.abs(T - last.metrics.probe_heldout_accuracy!.value!) < 0.05, `paired trained probe ${T} vs reported ${last.metrics.probe_heldout_accuracy!.value}`);
  assert.match((ex.detail as { trainedSource: string }).trainedSource, /same \d+ buffered rows/);
  assert.ok(Math.abs(ex.value! - (T - mean)) < 1e-12);
  const half = (2.776 * sd) / Math.sqrt(5);
  assert.ok(Math.abs(ex.ci![0] - (T - mean - half)) < 1e-4 && Math.abs(ex.ci![1] - (T - mean + half)) < 1e-4);
  assert.ok(ex.ci![0] > 0, `excess ${ex.value} interval ${ex.ci} excludes 0`);
  assert.equal((ex.detail as { noBetterThanRandom: boolean }).noBetterThanRandom, false);
  const none = await audit({ models: [{ path: path.join(ROOT, 'models/fmnist-cnn/model.json') }], dataset: 'fashion-mnist', perClass: 20, metrics: ['probe'], baseline: 'none', out: path.join(dir, 'off') });
  assert.ok(!Object.keys(none.report.models[0]!.layers[0]!.metrics).some((k) => k.startsWith('baseline_')), 'baseline: none turns it off');
});

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('the spine (pipeline, metrics, features, stats) never imports theory/', async () => {
  for (const folder of ['pipeline', 'metrics', 'features', 'stats']) {
    for (const file of await sources(path.join(ROOT, 'src', folder))) {
      const text = await readFile(file, 'utf8');
      assert.doesNotMatch(text, /from '(\.\.\/)+theory\//, `${path.relative(ROOT, file)} imports theory/`);
    }
  }
});

test("a TF.js Dense layer's own activation (tanh, elu) gives its random twins that activation; a plain ReLU layer keeps ReLU", async () => {
  const dir = await tempDir();
  const { tf } = await loadTf();
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ name: 'flat', inputShape: [28, 28, 1] }),
      tf.layers.dense({ name: 'h_tanh', units: 24, activation: 'tanh' }),
      tf.layers.dense({ name: 'h_elu', units: 16, activation: 'elu' }),
      tf.layers.dense({ name: 'h_relu', units: 12, activation: 'relu' }),
      tf.layers.dense({ name: 'logits', units: 10 }),
    ],
  });
  await model.save(saveToDir(path.join(dir, 'm')));
  model.dispose();
  const res = await audit({ models: [{ path: path.join(dir, 'm', 'model.json'), layers: 'h_tanh,h_elu,h_relu' }], dataset: 'fashion-mnist', perClass: 10, metrics: ['geometry'], baselineDraws: 2, engine: 'tfjs', out: path.join(dir, 'run') });
  const acts = res.report.models[0]!.layers.map((l) => [l.id, (l.metrics.baseline_width_ratio!.detail as { activation: string }).activation]);
  assert.deepEqual(acts, [['h_tanh', 'tanh'], ['h_elu', 'elu'], ['h_relu', 'relu']]);
});
