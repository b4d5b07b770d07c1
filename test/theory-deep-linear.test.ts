/**
 * Deep linear networks and the layer-geometry law of SCIENCE.md §1: C and D against closed forms,
 * backprop against finite differences (and the TF.js engine against the float64 one), the
 * authors' synthetic setting (geometric compression, linear discrimination, the re-derived ratio),
 * the CLI end to end through a tiny yargs driver, and a small Fashion-MNIST run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../src/errors.js';
import { deepLinearPlan, type DeepLinearArgs } from '../src/cli/theory-deep-linear.js';
import {
  deepLinearExperiment,
  forward64,
  layerDims,
  layerGeometry,

  mseLossAndGradients,
  nearlyOrthogonalData,
  oneHot,
  orthogonalInit,
  predictRatio,
  trainDeepLinear,
  weightSpectra,
  type DeepLinearNet,
} from '../src/theory/deep-linear/index.js';
import { linearFit } from '../src/stats/line-fit.js';
import { Rng } from '../src/util/rng.js';
import { FMNIST_SYSTEM, tempDir } from './helpers/fixtures.js';
import { runTheory, type CliRun } from './helpers/theory-cli.js';

function cli(args: string[]): CliRun {
  return runTheory(['deep-linear', ...args]);
}

const close = (a: number, b: number, rel: number, what: string) => assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-300), `${what}: ${a} vs ${b}`);

test('C and D of hand-built features match their closed forms, also after a diagonal layer', () => {
  // Class 0 at (1, ±a), class 1 at (−1, ±a): μ_0 = (1,0), μ_1 = (−1,0), μ_G = 0.
  // tr Σ_W = a² (every point is a from its mean), tr Σ_B = (1/2)(1 + 1) = 1 → C = a²; D = 1 − cos(μ_0, μ_1) = 2.
  const a = 0.3;
  const X = Float64Array.from([1, a, 1, -a, -1, a, -1, -a]);
  const labels = Int32Array.from([0, 0, 1, 1]);
  // W = diag(s, e) maps the points to (±s, ±e·a): C_1 = e²a²/s² (the ε²/s² mechanism of the law).
  const s = 1.7;
  const e = 0.4;
  const net: DeepLinearNet = { dims: [2, 2], weights: [Float64Array.from([s, 0, 0, e])] };
  const g = layerGeometry(forward64(net, X, 4), net.dims, labels, 2);
  close(g[0]!.compression, a * a, 1e-12, 'C_0');
  close(g[0]!.discrimination, 2, 1e-12, 'D_0');
  close(g[1]!.compression, (e * e * a * a) / (s * s), 1e-12, 'C_1');
  close(g[1]!.ratio!, (e * e) / (s * s), 1e-12, 'C_1/C_0');
  close(g[1]!.trWithin, e * e * a * a, 1e-12, 'tr Σ_W after the layer');

  // Three classes, means at angles 0, θ, 90° (uncentred): D = 1 − max cos = 1 − cos(min angle).
  const th = 0.5;
  const pts = [
    [1, 0],
    [Math.cos(th), Math.sin(th)],
    [0, 1],
  ];
  const Y = new Float64Array(12);
  const lab = new Int32Array(6);
  pts.forEach(([x, y], k) => {
    // Two points per class, ±(0.1, −0.2) around the mean: tr Σ_W = 0.05 for every class.
    Y.set([x! + 0.1, y! - 0.2, x! - 0.1, y! + 0.2], 4 * k);
    lab[2 * k] = k;
    lab[2 * k + 1] = k;
  });
  const [g3] = layerGeometry([Y], [2], lab, 3);
  const mg = [(1 + Math.cos(th)) / 3, (Math.sin(th) + 1) / 3];
  const trB = pts.reduce((acc, [x, y]) => acc + (x! - mg[0]!) ** 2 + (y! - mg[1]!) ** 2, 0) / 3;
  close(g3!.compression, 0.05 / trB, 1e-12, 'C (3 classes)');
  close(g3!.discrimination, 1 - Math.cos(Math.min(th, Math.PI / 2 - th)), 1e-12, 'D (3 classes)');

  const fit = linearFit([1, 2, 3, 4], [0.5, 0.7, 0.9, 1.1])!;
  close(fit.slope, 0.2, 1e-12, 'slope');
  close(fit.r2, 1, 1e-12, 'R²');
});

test('MSE gradients: float64 backprop matches central differences; one TF.js step matches one float64 step', async () => {
  const dims = [5, 4, 4, 3];
  const rng = new Rng(3);
  const net: DeepLinearNet = { dims, weights: dims.slice(1).map((o, l) => Float64Array.from({ length: o * dims[l]! }, () => rng.normal() * 0.7)) };
  const N = 6;
  const X = Float64Array.from({ length: N * 5 }, () => rng.normal());
  const labels = Int32Array.from([0, 1, 2, 0, 1, 2]);
  const Y = oneHot(labels, 3);
  const alpha = 1.7;
  const { loss, grads } = mseLossAndGradients(net, X, Y, N, alpha);
  // The loss itself, computed plainly.
  let out = X;
  let width = 5;
  for (const [l, W] of net.weights.entries()) {
    const o = dims[l + 1]!;
    const next = new Float64Array(N * o);
    for (let i = 0; i < N; i++) for (let r = 0; r < o; r++) for (let c = 0; c < width; c++) next[i * o + r]! += W[r * width + c]! * out[i * width + c]!;
    out = next;
    width = o;
  }
  let plain = 0;
  for (let i = 0; i < out.length; i++) plain += (alpha * out[i]! - Y[i]!) ** 2;
  close(loss, plain / N, 1e-12, 'loss');
  const h = 1e-6;
  let worst = 0;
  for (let l = 0; l < net.weights.length; l++) {
    const W = net.weights[l]!;
    for (let j = 0; j < W.length; j++) {
      const keep = W[j]!;
      W[j] = keep + h;
      const up = mseLossAndGradients(net, X, Y, N, alpha).loss;
      W[j] = keep - h;
      const down = mseLossAndGradients(net, X, Y, N, alpha).loss;
      W[j] = keep;
      const fd = (up - down) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - grads[l]![j]!) / Math.max(1e-3, Math.abs(fd)));
    }
  }
  assert.ok(worst < 1e-6, `largest relative gradient error ${worst}`);

  const data = { X, N, d: 5, K: 3, labels };
  const a64 = await trainDeepLinear(net, data, { lr: 0.05, steps: 1, alpha, engine: 'float64' });
  const atf = await trainDeepLinear(net, data, { lr: 0.05, steps: 1, alpha, engine: 'tfjs' });
  close(atf.initialLoss, a64.initialLoss, 1e-5, 'initial loss (tfjs vs float64)');
  close(atf.finalLoss, a64.finalLoss, 1e-5, 'loss after one step (tfjs vs float64)');
  for (let l = 0; l < 3; l++) {
    for (let j = 0; j < net.weights[l]!.length; j++) assert.ok(Math.abs(atf.net.weights[l]![j]! - a64.net.weights[l]![j]!) < 1e-5, `W_${l + 1}[${j}]`);
  }
  // Orthogonal init: W_lᵀW_l = ξ² I for the square layers.
  const init = orthogonalInit(layerDims(6, 6, 2, 3), 0.3, 1);
  const W = init.weights[1]!;
  for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) {
    let s = 0;
    for (let r = 0; r < 6; r++) s += W[r * 6 + i]! * W[r * 6 + j]!;
    assert.ok(Math.abs(s - (i === j ? 0.09 : 0)) < 1e-12);
  }
});

test("the authors' synthetic setting: C falls geometrically (≈ the re-derived ρ), D rises linearly", async () => {
  // SCIENCE.md §1: 30 samples (K = 3, n = 10), d = 50, L = 6, width 50, orthogonal init 0.3, GD lr 0.1, α = 1.
  const r = await deepLinearExperiment({ data: 'synthetic', depth: 6, width: 50, perClass: 10, classes: 3, dim: 50, steps: 5000, lr: 0.1, initScale: 0.3, seed: 0, engine: 'float64' });
  assert.ok(r.training.converged && r.training.finalLoss < 1e-10, `loss ${r.training.finalLoss} after ${r.training.stepsRun} steps`);
  assert.equal(r.training.trainAccuracy, 1);
  assert.equal(r.layers.length, 7);
  const hidden = r.layers.filter((g) => g.kind === 'hidden');
  for (let i = 1; i < hidden.length; i++) {
    assert.ok(hidden[i]!.compression < hidden[i - 1]!.compression, `C does not fall at layer ${hidden[i]!.layer}`);
    assert.ok(hidden[i]!.discrimination > hidden[i - 1]!.discrimination, `D does not rise at layer ${hidden[i]!.layer}`);
  }
  // Geometric: the per-layer ratios across hidden layers differ by less than a factor 2 (measured: ~1.001).
  assert.ok(r.hiddenRatioSpread !== null && r.hiddenRatioSpread < 2, `ratio spread ${r.hiddenRatioSpread}`);
  const fit = r.compressionFit!;
  assert.ok(fit.r2 > 0.99, `R² of ln C ${fit.r2}`);
  // SCIENCE.md quotes ~×0.06 per layer; measured 0.061.
  assert.ok(fit.ratio > 0.03 && fit.ratio < 0.12, `fitted ratio ${fit.ratio}`);
  // The re-derived ρ = ε²/(n/α²)^{1/L} (ε ≈ 0.3, the init scale the tail singular values keep): within 25% (measured: 0.3%).
  assert.ok(Math.abs(r.prediction.epsilon - 0.3) < 0.03, `ε ${r.prediction.epsilon}`);
  assert.ok(Math.abs(fit.ratio / r.prediction.ratio - 1) < 0.25, `fitted ${fit.ratio} vs predicted ${r.prediction.ratio}`);
  assert.ok(Math.abs(fit.ratio / r.prediction.ratioFromWeights - 1) < 0.25, `fitted ${fit.ratio} vs from weights ${r.prediction.ratioFromWeights}`);
  // Linear D: positive slope and a straight line (measured slope +0.0087/layer, R² 0.99999).
  const df = r.discriminationFit!;
  assert.ok(df.slope > 0.002, `D slope ${df.slope}`);
  assert.ok(df.r2 > 0.98, `R² of D ${df.r2}`);
});

test('CLI: --json report and --out files; bad flags exit 2; a diverging run exits 1 and suggests a smaller --lr', async () => {
  const dir = await tempDir();
  const out = path.join(dir, 'dl');
  const r = cli(['--depth', '4', '--width', '12', '--per-class', '3', '--dim', '12', '--steps', '4000', '--lr', '0.2', '--init-scale', '0.5', '--json', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const res = (JSON.parse(r.stdout) as { result: unknown }).result as {
    setting: { depth: number; K: number; N: number; engine: string };
    layers: { layer: number; kind: string; compression: number; discrimination: number }[];
    compressionFit: { ratio: number } | null;
    prediction: { ratio: number; epsilon: number };
    training: { finalLoss: number; trainAccuracy: number };
    definitions: Record<string, string>;
  };
  assert.equal(res.setting.depth, 4);
  assert.equal(res.setting.K, 3);
  assert.equal(res.setting.N, 9);
  assert.equal(res.setting.engine, 'float64');
  assert.deepEqual(res.layers.map((g) => g.kind), ['input', 'hidden', 'hidden', 'hidden', 'output']);
  assert.ok(res.layers.every((g) => Number.isFinite(g.discrimination)));
  assert.ok(res.compressionFit !== null && res.compressionFit.ratio < 1, JSON.stringify(res.compressionFit));
  assert.equal(res.training.trainAccuracy, 1);
  assert.match(res.definitions.epsilon!, /re-derivation/);
  const file = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as typeof res;
  assert.deepEqual(file.layers, res.layers);
  const csv = (await readFile(path.join(out, 'layers.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv.length, 6);
  assert.match(csv[0]!, /^layer,kind,dim,compression,discrimination/);

  for (const bad of [['--depth', '1'], ['--lr', '0'], ['--data', 'cifar']]) {
    const b = cli([...bad, '--steps', '1', '-q']);
    assert.equal(b.code, 2, `${bad.join(' ')}: ${b.stderr}`);
  }
  const div = cli(['--lr', '1e6', '--init-scale', '3', '--depth', '3', '--width', '10', '--per-class', '2', '--dim', '10', '-q']);
  assert.equal(div.code, 1, div.stderr);
  assert.match(div.stderr, /diverged/);
  assert.match(div.stderr, /smaller learning rate/);
  assert.ok(!existsSync(path.join(dir, 'never')));

  // The remaining checks in-process (no child per flag).
  const base: DeepLinearArgs = { data: 'synthetic', depth: 6, center: true, lr: 0.1, 'init-scale': 0.3, alpha: 1, schedule: 'constant', engine: 'auto', seed: 0, json: false, quiet: true, force: false };
  assert.deepEqual(deepLinearPlan(base), { data: 'synthetic', depth: 6, width: 50, classes: 3, perClass: 10, steps: 5000, dim: 50 });
  for (const bad of [{ lr: -1 }, { lr: NaN }, { depth: 2.5 }, { width: 0 }, { 'init-scale': 0 }, { alpha: -2 }, { schedule: 'step' }, { engine: 'gpu' }, { dataset: 'mnist' }, { data: 'fashion-mnist', dim: 10 }, { classes: 1 }, { width: 2 }]) {
    assert.throws(() => deepLinearPlan({ ...base, ...bad } as DeepLinearArgs), UsageError, JSON.stringify(bad));
  }
  await assert.rejects(deepLinearExperiment({ data: 'synthetic', depth: 3, width: 5, perClass: 20, classes: 3, dim: 10, steps: 1, lr: 0.1, initScale: 0.3, seed: 0 }), /N = K·n ≤ d/);
});

test('Fashion-MNIST subset: compression falls across the layers of a trained deep linear net', async (t) => {
  if (!existsSync(path.join(FMNIST_SYSTEM, 'train-images-idx3-ubyte.gz'))) {
    t.skip(`Fashion-MNIST not installed at ${FMNIST_SYSTEM}`);
    return;
  }
  const r = await deepLinearExperiment({ data: 'fashion-mnist', perClass: 30, classes: 3, depth: 4, width: 32, steps: 600, lr: 0.5, initScale: 0.3, seed: 0 });
  assert.equal(r.setting.engine, 'tfjs');
  assert.equal(r.setting.d, 784);
  assert.equal(r.setting.N, 90);
  assert.ok(r.training.finalLoss < 0.5 * r.training.initialLoss, `loss ${r.training.initialLoss} → ${r.training.finalLoss}`);
  assert.ok(r.training.trainAccuracy > 0.9, `train accuracy ${r.training.trainAccuracy}`);
  const C = r.layers.map((g) => g.compression);
  for (let l = 1; l < r.layers.length - 1; l++) assert.ok(C[l]! < C[l - 1]!, `C does not fall from layer ${l - 1} to ${l}: ${C.join(', ')}`);
  assert.ok(r.compressionFit !== null && r.compressionFit.ratio < 1, `fitted ratio ${r.compressionFit?.ratio}`);
});

test('predicted ratio from weights with known singular values, by hand', async () => {
  const diag = (v: number[], rows: number, cols: number) => {
    const W = new Float64Array(rows * cols);
    v.forEach((x, i) => (W[i * cols + i] = x));
    return W;
  };
  // K = 2: ε_1 = mean(0.5, 0.1) = 0.3 (top mean 2.5), ε_2 = mean(0.2, 0.2) = 0.2 (top 2.5); the
  // last layer does not count. ε = median = 0.25; ρ = ε² / (n/α²)^{1/L} with n = 10, α = 1, L = 3.
  const net = { dims: [4, 4, 4, 2], weights: [diag([3, 2, 0.5, 0.1], 4, 4), diag([4, 1, 0.2, 0.2], 4, 4), diag([1, 1], 2, 4)] };
  const spectra = await weightSpectra(net, 2);
  assert.ok(Math.abs(spectra[0]!.tailMean! - 0.3) < 1e-12 && Math.abs(spectra[1]!.topMean - 2.5) < 1e-12);
  const p = predictRatio(spectra, 10, 1);
  assert.ok(Math.abs(p.epsilon - 0.25) < 1e-12, `${p.epsilon}`);
  assert.ok(Math.abs(p.ratio - 0.0625 / Math.cbrt(10)) < 1e-12, `${p.ratio}`);
  assert.ok(Math.abs(p.ratioFromWeights - (0.0144 + 0.0064) / 2) < 1e-12, `${p.ratioFromWeights}`);
  // α scales n: α = 2 divides n by 4.
  assert.ok(Math.abs(predictRatio(spectra, 10, 2).ratio - 0.0625 / Math.cbrt(2.5)) < 1e-12);
});
