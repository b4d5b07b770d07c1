/**
 * The audit end to end: numbers checked against a plain computation from extracted activations,
 * invariance to batch size, gates, specs, bad input, and a real pretrained CNN.
 */
import { selectionKey } from '../src/stats/sample-buffer.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { EigenvalueDecomposition, Matrix, pseudoInverse, SingularValueDecomposition } from 'ml-matrix';
import { audit } from '../src/pipeline/audit.js';
import { extract } from '../src/pipeline/extract.js';
import { readNpy } from '../src/data/npy.js';
import { bootstrapCi } from '../src/metrics/bootstrap.js';
import { reportSchema, type Report } from '../src/report/schema.js';
import { catalogRows } from '../src/metrics/catalog.js';
import { loadProbeSpec, METRIC_GROUPS } from '../src/probe-spec/probe-spec.js';
import { auditOptionsFromSpec } from '../src/pipeline/from-spec.js';
import { auditOptionsFrom, type AuditArgs } from '../src/cli/audit.js';
import { OnnxGraphBuilder } from '../src/runtime/onnx-build.js';
import { decodeModel } from '../src/runtime/onnx-graph.js';
import { cli, hasShared, randomMlp, ROOT, sharedPath, tempDir, writeIdxDataset, writeOnnxMlp, idxBytes, syntheticImages } from './helpers/fixtures.js';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

/** Plain float64 compression and discrimination from an n×d matrix, written from SCIENCE.md §1. */
function plainGeometry(X: Float32Array, n: number, d: number, y: ArrayLike<number>, K: number): { C: number; D: number } {
  const mu = Array.from({ length: K }, () => new Float64Array(d));
  const cnt = new Array<number>(K).fill(0);
  const g = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const k = Number(y[i]);
    cnt[k]!++;
    for (let j = 0; j < d; j++) {
      mu[k]![j]! += X[i * d + j]!;
      g[j]! += X[i * d + j]!;
    }
  }
  for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) mu[k]![j]! /= cnt[k]!;
  for (let j = 0; j < d; j++) g[j]! /= n;
  let trW = 0;
  for (let i = 0; i < n; i++) {
    const k = Number(y[i]);
    for (let j = 0; j < d; j++) trW += (X[i * d + j]! - mu[k]![j]!) ** 2;
  }
  trW /= n;
  let trB = 0;
  for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) trB += (mu[k]![j]! - g[j]!) ** 2;
  trB /= K;
  let maxCos = -Infinity;
  for (let k = 0; k < K; k++)
    for (let l = 0; l < K; l++) {
      if (k === l) continue;
      let dot = 0, nk = 0, nl = 0;
      for (let j = 0; j < d; j++) {
        dot += mu[k]![j]! * mu[l]![j]!;
        nk += mu[k]![j]! ** 2;
        nl += mu[l]![j]! ** 2;
      }
      maxCos = Math.max(maxCos, dot / Math.sqrt(nk * nl));
    }
  return { C: trW / trB, D: 1 - maxCos };
}

async function fixture() {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 240, 4, { seed: 5 });
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 16, 8, 4], 11));
  return { dir, data, model };
}

test('audit compression and discrimination equal a plain computation on the extracted activations', async () => {
  const { dir, data, model } = await fixture();
  const ex = await extract({ model, dataset: data.images, out: path.join(dir, 'acts') });
  const y = (await readNpy(path.join(dir, 'acts/labels.npy'))).data as Int32Array;
  const res = await audit({ models: [{ path: model }], dataset: data.images, out: path.join(dir, 'run') });
  assert.equal(res.report.models[0]!.layers.length, 2);
  for (const layer of res.report.models[0]!.layers) {
    const file = ex.manifest.models[0]!.layers.find((l) => l.id === layer.id)!.file!;
    const a = await readNpy(path.join(dir, 'acts', file));
    const [n, d] = a.shape as [number, number];
    const ref = plainGeometry(a.data as Float32Array, n, d, y, 4);
    assert.ok(rel(layer.metrics.compression!.value!, ref.C) < 1e-6, `${layer.id} C ${layer.metrics.compression!.value} vs ${ref.C}`);
    assert.ok(rel(layer.metrics.discrimination!.value!, ref.D) < 1e-6, `${layer.id} D ${layer.metrics.discrimination!.value} vs ${ref.D}`);
  }
  // The files of a run: a schema-valid report, a manifest and a summary.
  const report = JSON.parse(await readFile(path.join(res.outDir, 'report.json'), 'utf8')) as unknown;
  assert.equal(reportSchema.safeParse(report).success, true);
  for (const f of ['manifest.json', 'summary.txt']) assert.ok(existsSync(path.join(res.outDir, f)), f);
});

test('the same numbers come out for batches of 1, 7 and 256', async () => {
  const { dir, data, model } = await fixture();
  const runs: Report[] = [];
  for (const batchSize of [1, 7, 256]) {
    runs.push((await audit({ models: [{ path: model }], dataset: data.images, batchSize, out: path.join(dir, `b${batchSize}`) })).report);
  }
  const [a, ...rest] = runs;
  for (const b of rest) {
    for (const [li, la] of a!.models[0]!.layers.entries()) {
      const lb = b.models[0]!.layers[li]!;
      for (const [name, ma] of Object.entries(la.metrics)) {
        const vb = lb.metrics[name]!.value;
        if (ma.value === null) assert.equal(vb, null);
        else assert.ok(Math.abs(ma.value - vb!) <= 1e-6 * Math.max(1, Math.abs(ma.value)), `${la.id} ${name}: ${ma.value} vs ${vb}`);
      }
    }
  }
});

test('the metric catalogue names exactly the metrics an audit with every group and the baseline writes', async () => {
  const { dir, data, model } = await fixture();
  const res = await audit({ models: [{ path: model }], dataset: data.images, metrics: [...METRIC_GROUPS], baseline: 'random-layer', out: path.join(dir, 'all') });
  const written = new Set(res.report.models[0]!.layers.flatMap((l) => Object.keys(l.metrics)));
  assert.deepEqual([...written].sort(), catalogRows().filter((r) => r.source !== 'compare').map((r) => r.key).sort());
  // A gate on a metric of a group the run does not compute is refused before any work.
  const r = cli(['audit', '-m', model, '-d', data.images, '--metrics', 'geometry', '-o', path.join(dir, 'g0'), '--fail-under', 'mdlsm_kappa=0.5']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /comes from the mdlsm metrics[\s\S]*--metrics geometry,mdlsm/);
  assert.equal(existsSync(path.join(dir, 'g0')), false);
});

test('gates exit 3 and still write the complete report; --json is the report', async () => {
  const { dir, data, model } = await fixture();
  const out = path.join(dir, 'gated');
  const r = cli(['audit', '-m', model, '-d', data.images, '-o', out, '--json', '--fail-under', 'probe_heldout_accuracy=1.01', '--fail-over', 'compression@first=1e9']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /1 gate failed: --fail-under probe_heldout_accuracy=1.01/);
  const report = reportSchema.parse((JSON.parse(r.stdout) as { result: unknown }).result);
  assert.equal(report.gates?.length, 2);
  assert.deepEqual(report.gates?.map((g) => g.passed), [false, true]);
  assert.ok(existsSync(path.join(out, 'report.json')));
  const ok = cli(['audit', '-m', model, '-d', data.images, '-o', path.join(dir, 'g2'), '-q', '--fail-under', 'accuracy=0']);
  assert.equal(ok.code, 0, ok.stderr);
  const bad = cli(['audit', '-m', model, '-d', data.images, '-o', path.join(dir, 'g3'), '-q', '--fail-under', 'compresion=1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /did you mean `compression`/);
  assert.equal(existsSync(path.join(dir, 'g3')), false, 'no report on a usage error');
});

test('bootstrap intervals equal a bias-corrected bootstrap of the extracted activations; an interval that misses the value is flagged', async () => {
  const { dir, data, model } = await fixture();
  const res = await audit({ models: [{ path: model }], dataset: data.images, ci: 0.9, bootstrapReps: 50, metrics: ['geometry'], out: path.join(dir, 'ci') });
  // The report records the sampling, not the whole options object it was passed in.
  assert.deepEqual(res.report.options.sampling, { seed: 0 });
  // summary.txt: the legend explains the columns shown and no others; an interval that leaves
  // out its value is marked, and the mark explained, exactly when one does.
  const summary = await readFile(path.join(res.outDir, 'summary.txt'), 'utf8');
  assert.match(summary, /C = tr\(Σ_W\)\/tr\(Σ_B\)/);
  assert.doesNotMatch(summary, /rank95 =|probe =|NC1 =/);
  const anyOutside = res.report.models[0]!.layers.some((l) => ['compression', 'discrimination'].some((k) => {
    const r = l.metrics[k]!;
    return r.ci !== undefined && r.value !== null && (r.value < r.ci[0] || r.value > r.ci[1]);
  }));
  assert.equal(summary.includes('†'), anyOutside);
  // 60 images per class fit the 200-per-class buffer: it holds every row, class by class and in
  // (selection key, index) order within a class, so a bootstrap of the extracted activations in
  // that order with the run's seed draws the same resamples, and the interval is the basic one,
  // [2C − q_hi, 2C − q_lo].
  const ex = await extract({ model, dataset: data.images, out: path.join(dir, 'ci-acts') });
  const y = (await readNpy(path.join(dir, 'ci-acts/labels.npy'))).data as Int32Array;
  for (const l of res.report.models[0]!.layers) {
    const c = l.metrics.compression!;
    assert.ok(c.ci && c.ci[0] <= c.ci[1], 'interval');
    assert.ok(c.ci[0] < c.value! * 1.5 && c.ci[1] > c.value! / 1.5, `${c.value} in a plausible interval ${c.ci}`);
    const outside = c.value! < c.ci[0] || c.value! > c.ci[1];
    assert.equal(/does not contain the plug-in value/.test(String(c.detail?.ciNote ?? '')), outside, `${l.id}: ${c.value} vs ${c.ci}`);
    const file = ex.manifest.models[0]!.layers.find((x) => x.id === l.id)!.file!;
    const a = await readNpy(path.join(dir, 'ci-acts', file));
    const [n, d] = a.shape as [number, number];
    const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => y[i]! - y[j]! || selectionKey(res.report.seed, i) - selectionKey(res.report.seed, j) || i - j);
    const X = new Float32Array(n * d);
    order.forEach((i, r) => X.set((a.data as Float32Array).subarray(i * d, (i + 1) * d), r * d));
    const m = { X, n, d, K: 4, labels: Int32Array.from(order, (i) => y[i]!), ids: Int32Array.from(order) };
    const ref = await bootstrapCi((s) => plainGeometry(s.X, s.n, s.d, s.labels, 4).C, m, { level: 0.9, reps: 50, seed: res.report.seed });
    assert.ok(ref.ci);
    const C = plainGeometry(m.X, n, d, m.labels, 4).C;
    const want = [Math.max(0, 2 * C - ref.ci[1]), 2 * C - ref.ci[0]];
    for (const k of [0, 1]) assert.ok(Math.abs(c.ci[k]! - want[k]!) < 1e-6 * C, `${l.id} ci[${k}] ${c.ci[k]} vs ${want[k]}`);
  }
});

test('a probe spec drives the audit; a bad key is named', async () => {
  const { dir, data, model } = await fixture();
  const spec = path.join(dir, 'probe.yaml');
  await writeFile(spec, `dataset: { name: ${path.relative(dir, data.images)}, perClass: 30, seed: 2 }\nmodels:\n  - { name: tiny, path: mlp.onnx, layers: h2 }\nmetrics: [geometry, rank]\nbaseline: none\n`);
  const r = cli(['audit', spec, '-o', path.join(dir, 'spec-run'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = reportSchema.parse((JSON.parse(r.stdout) as { result: unknown }).result);
  assert.equal(report.models[0]!.name, 'tiny');
  assert.deepEqual(report.models[0]!.layers.map((l) => l.id), ['h2']);
  assert.deepEqual(Object.keys(report.models[0]!.layers[0]!.metrics).sort(), ['compression', 'discrimination', 'effective_rank', 'numerical_rank']);
  assert.deepEqual(report.dataset.perClassCounts, [30, 30, 30, 30]);
  await writeFile(spec, `dataset: { name: x, perclass: 30 }\nmodels: [{ path: mlp.onnx }]\n`);
  const bad = cli(['audit', spec, '-o', path.join(dir, 'bad-spec')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown key `dataset.perclass`/);
});

test('bad input: NaN activations, a one-item class, a layer too wide to keep', async (t) => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 60, 3);
  await t.test('NaN names the layer and the first bad item (exit 1, no report)', async () => {
    const g = new OnnxGraphBuilder();
    g.input('x', ['N', 64]);
    g.initializer('shift', new Float32Array(64).fill(0.5), [64]);
    g.node('Sub', ['x', 'shift'], ['centred']);
    g.node('Log', ['centred'], ['logged']);
    g.node('Relu', ['logged'], ['h']);
    g.node('ReduceSum', ['h'], ['out'], { axes: [1], keepdims: 1 });
    g.output('out', ['N', 1]);
    const model = path.join(dir, 'nan.onnx');
    await writeFile(model, g.toBytes(11));
    const r = cli(['audit', '-m', model, '-d', data.images, '--layers', 'h', '-o', path.join(dir, 'nan-run')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /layer `h` produced NaN for dataset item \d+/);
    assert.equal(existsSync(path.join(dir, 'nan-run')), false);
  });
  await t.test('a class with one item → exit 2', async () => {
    const { images, labels } = syntheticImages(21, 3, 4);
    const y = Uint8Array.from(labels, (v, i) => (i === 20 ? 2 : v === 2 ? 1 : v));
    const b = idxBytes(images, 21, 8, 8, y);
    await writeFile(path.join(dir, 'one-images-idx3-ubyte'), b.images);
    await writeFile(path.join(dir, 'one-labels-idx1-ubyte'), b.labels);
    const model = path.join(dir, 'mlp.onnx');
    await writeOnnxMlp(model, randomMlp([64, 8, 8, 3]));
    const r = cli(['audit', '-m', model, '-d', path.join(dir, 'one-images-idx3-ubyte'), '-o', path.join(dir, 'one-run')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /class `2` has a single item/);
  });
  await t.test('a layer too wide after flatten says which reduction fits (exit 2)', async () => {
    const wide = path.join(dir, 'wide.onnx');
    await writeOnnxMlp(wide, randomMlp([64, 9000, 4, 3]));
    const r = cli(['audit', '-m', wide, '-d', data.images, '--layers', 'h1', '--reduce', 'flatten', '-o', path.join(dir, 'wide-run')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /9000 wide after flatten.*\n.*project:1024/);
  });
});

test('DeepEverest CNN on MNIST: compression falls and probe accuracy rises with depth', async (t) => {
  if (!hasShared('models/mnist-cnn-deepeverest.onnx') || !hasShared('data/mnist/t10k-images-idx3-ubyte.gz')) {
    t.skip('needs ../shared/assets/models/mnist-cnn-deepeverest.onnx and data/mnist (absent)');
    return;
  }
  const dir = await tempDir();
  const res = await audit({
    models: [{ path: sharedPath('models/mnist-cnn-deepeverest.onnx') }],
    dataset: sharedPath('data/mnist/t10k-images-idx3-ubyte.gz'),
    perClass: 100,
    bufferPerClass: 100,
    out: path.join(dir, 'de'),
  });
  const m = res.report.models[0]!;
  const first = m.layers[0]!;
  const last = m.layers[m.layers.length - 1]!;
  t.diagnostic(`accuracy ${m.accuracy?.value}; C ${m.layers.map((l) => l.metrics.compression!.value!.toFixed(3)).join(' → ')}; probe ${m.layers.map((l) => l.metrics.probe_heldout_accuracy!.value!.toFixed(3)).join(' → ')}`);
  assert.ok(m.accuracy!.value! >= 0.97);
  assert.ok(last.metrics.compression!.value! < first.metrics.compression!.value!, 'C falls');
  // The cross-fitted probe scores all 1,000 images (SE ≈ 0.005 at 0.98): the first conv layer of
  // an MNIST CNN is already ~0.98 linearly decodable, so depth may only hold it within noise.
  assert.ok(last.metrics.probe_heldout_accuracy!.value! >= first.metrics.probe_heldout_accuracy!.value! - 0.01, 'probe accuracy does not fall with depth beyond noise');
  assert.ok(last.metrics.probe_control_heldout_accuracy!.value! < 0.3, 'shuffled-label control stays near chance');
});

test('DeepEverest CNN on MNIST: each layer C, D, NC1, NC2, NC3, NC4, CDNV and ranks equal a plain computation from its extracted activations', async (t) => {
  if (!hasShared('models/mnist-cnn-deepeverest.onnx') || !hasShared('data/mnist/t10k-images-idx3-ubyte.gz')) {
    t.skip('needs ../shared/assets/models/mnist-cnn-deepeverest.onnx and data/mnist (absent)');
    return;
  }
  const dir = await tempDir();
  const common = { dataset: sharedPath('data/mnist/t10k-images-idx3-ubyte.gz'), perClass: 40, reduce: 'flatten' };
  const res = await audit({ ...common, models: [{ path: sharedPath('models/mnist-cnn-deepeverest.onnx') }], metrics: ['geometry', 'collapse', 'rank'], out: path.join(dir, 'a') });
  const ex = await extract({ ...common, model: sharedPath('models/mnist-cnn-deepeverest.onnx'), out: path.join(dir, 'x') });
  const y = (await readNpy(path.join(dir, 'x/labels.npy'))).data as Int32Array;
  const out = await readNpy(path.join(dir, 'x/output.npy'));
  const K = 10;
  const N = y.length;
  const pred = Array.from({ length: N }, (_, i) => {
    let b = 0;
    for (let k = 1; k < K; k++) if (Number(out.data[i * K + k]) > Number(out.data[i * K + b])) b = k;
    return b;
  });
  const layers = res.report.models[0]!.layers;
  assert.ok(layers.length >= 3, `${layers.length} layers`);
  // NC3 at the layer feeding the head: fc2.weight (10×50) read straight from the ONNX file.
  const proto = decodeModel(new Uint8Array(await readFile(sharedPath('models/mnist-cnn-deepeverest.onnx'))));
  const fc2 = proto.graph!.initializer!.find((t) => t.name === 'fc2.weight')!;
  const raw = Buffer.from(fc2.rawData!);
  const W = Array.from({ length: 10 }, (_, k) => Array.from({ length: 50 }, (_, j) => raw.readFloatLE(4 * (k * 50 + j))));
  assert.deepEqual(layers.filter((l) => l.metrics.nc3).map((l) => l.id), ['x'], 'NC3 only at the head input');
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const popStd = (a: number[]) => Math.sqrt(mean(a.map((v) => (v - mean(a)) ** 2)));
  const dotv = (a: number[], b: number[]) => a.reduce((s, v, j) => s + v * b[j]!, 0);
  const cos = (a: number[], b: number[]) => dotv(a, b) / Math.sqrt(dotv(a, a) * dotv(b, b));
  for (const l of layers) {
    const file = ex.manifest.models[0]!.layers.find((x) => x.id === l.id)!.file!;
    const a = await readNpy(path.join(dir, 'x', file));
    const d = a.shape[1]!;
    const X = (i: number, j: number) => Number(a.data[i * d + j]);
    // Class means, global mean, traces (SCIENCE.md §1).
    const mu = Array.from({ length: K }, () => new Array<number>(d).fill(0));
    const cnt = new Array<number>(K).fill(0);
    for (let i = 0; i < N; i++) {
      cnt[y[i]!]!++;
      for (let j = 0; j < d; j++) mu[y[i]!]![j]! += X(i, j);
    }
    mu.forEach((m, k) => m.forEach((_, j) => (m[j]! /= cnt[k]!)));
    const g = new Array<number>(d).fill(0);
    for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) g[j]! += X(i, j) / N;
    const mt = mu.map((m) => m.map((v, j) => v - g[j]!));
    let ssw = 0;
    const varK = new Array<number>(K).fill(0);
    for (let i = 0; i < N; i++) {
      let e = 0;
      for (let j = 0; j < d; j++) e += (X(i, j) - mu[y[i]!]![j]!) ** 2;
      ssw += e;
      varK[y[i]!]! += e / cnt[y[i]!]!;
    }
    const C = ssw / N / mean(mt.map((v) => dotv(v, v)));
    let maxCos = -Infinity;
    for (let k = 0; k < K; k++) for (let q = 0; q < K; q++) if (k !== q) maxCos = Math.max(maxCos, cos(mu[k]!, mu[q]!));
    // NC1 in the span of the centred means: Σ_B⁺ = K (M̃⁺)ᵀ M̃⁺, so NC1 = (1/N) Σ_i ‖M̃⁺ (h_i − μ_{y_i})‖².
    const M = new Matrix(mt).transpose();
    const sMax = new SingularValueDecomposition(M).diagonal[0]!;
    const Mp = pseudoInverse(M, 1e-9 * sMax);
    let nc1 = 0;
    for (let i = 0; i < N; i++) {
      const r = Matrix.columnVector(Array.from({ length: d }, (_, j) => X(i, j) - mu[y[i]!]![j]!));
      nc1 += Mp.mmul(r).norm('frobenius') ** 2 / N;
    }
    const norms = mt.map((v) => Math.sqrt(dotv(v, v)));
    const offCos: number[] = [];
    for (let k = 0; k < K; k++) for (let q = 0; q < K; q++) if (k !== q) offCos.push(cos(mt[k]!, mt[q]!));
    let nc4 = 0;
    for (let i = 0; i < N; i++) {
      let best = 0;
      let bestD = Infinity;
      for (let k = 0; k < K; k++) {
        let e = 0;
        for (let j = 0; j < d; j++) e += (X(i, j) - mu[k]![j]!) ** 2;
        if (e < bestD) [best, bestD] = [k, e];
      }
      if (best !== pred[i]) nc4 += 1 / N;
    }
    const cd: number[] = [];
    for (let k = 0; k < K; k++) for (let q = k + 1; q < K; q++) cd.push((varK[k]! + varK[q]!) / (2 * mu[k]!.reduce((s, v, j) => s + (v - mu[q]![j]!) ** 2, 0)));
    // Ranks from the eigenvalues of the centred N×N Gram (ml-matrix), independent of ours.
    const Xc = new Matrix(Array.from({ length: N }, (_, i) => Array.from({ length: d }, (_, j) => X(i, j) - g[j]!)));
    const ev = new EigenvalueDecomposition(Xc.mmul(Xc.transpose()), { assumeSymmetric: true }).realEigenvalues.sort((p, q) => q - p);
    const sv = ev.filter((v) => v > 1e-10 * ev[0]!).map(Math.sqrt);
    const total = sv.reduce((s, v) => s + v, 0);
    let nr = 0;
    for (let acc = 0; acc < 0.95 * total; ) acc += sv[nr++]!;
    const er = Math.exp(-sv.reduce((s, v) => s + (v / total) * Math.log(v / total), 0));
    const want: Record<string, number> = {
      compression: C,
      discrimination: 1 - maxCos,
      nc1,
      nc2_equinorm: popStd(norms) / mean(norms),
      nc2_equiangularity: popStd(offCos),
      nc2_max_angle: mean(offCos.map((c) => Math.abs(c + 1 / (K - 1)))),
      nc4,
      cdnv: mean(cd),
      numerical_rank: nr,
      effective_rank: er,
    };
    if (l.id === 'x') {
      const fro = (rows: number[][]) => Math.sqrt(rows.reduce((s, r) => s + dotv(r, r), 0));
      const wn = fro(W);
      const mn = fro(mt);
      want.nc3 = W.reduce((s, r, k) => s + r.reduce((t, v, j) => t + (v / wn - mt[k]![j]! / mn) ** 2, 0), 0);
    }
    for (const [name, v] of Object.entries(want)) {
      const got = l.metrics[name]?.value;
      assert.ok(typeof got === 'number', `${l.id} ${name} missing`);
      const tol = name === 'effective_rank' ? 1e-4 : name === 'numerical_rank' ? 0 : 1e-5;
      assert.ok(Math.abs(got - v) <= tol * Math.max(1, Math.abs(v)), `${l.id} (d=${d}) ${name}: ${got} vs plain ${v}`);
    }
  }
  t.diagnostic(`NC1 ${layers.map((l) => l.metrics.nc1!.value!.toFixed(3)).join(' → ')}; effective rank ${layers.map((l) => l.metrics.effective_rank!.value!.toFixed(1)).join(' → ')}`);
});

test('random-layer baseline: a seeded random twin per layer, excess = trained − random', async () => {
  const { dir, data, model } = await fixture();
  const run = async (out: string) =>
    (await audit({ models: [{ path: model }], dataset: data.images, baseline: 'random-layer', metrics: ['probe'], out: path.join(dir, out) })).report.models[0]!.layers;
  const a = await run('bl1');
  const b = await run('bl2');
  for (const [i, l] of a.entries()) {
    const m = l.metrics;
    assert.ok(m.baseline_probe_heldout_accuracy && m.baseline_width_ratio, `${l.id} has baseline metrics`);
    // trained: the layer's probe under the random layers' protocol on the same buffered rows.
    const trained = (m.excess_probe_heldout_accuracy!.detail as { trained: number }).trained;
    assert.ok(Math.abs(m.excess_probe_heldout_accuracy!.value! - (trained - m.baseline_probe_heldout_accuracy!.value!)) < 1e-12);
    assert.ok(Math.abs(trained - m.probe_heldout_accuracy!.value!) < 0.15, `${l.id}: paired ${trained} vs reported ${m.probe_heldout_accuracy!.value}`);
    const detail = m.baseline_width_ratio!.detail as { width: number; inputDim: number; rHat: number; predictedThreshold: number };
    assert.equal(detail.width, l.dim);
    assert.equal(detail.inputDim, i === 0 ? 64 : a[i - 1]!.dim, 'the input of layer l is layer l−1 (the model input for the first)');
    assert.ok(Math.abs(m.baseline_width_ratio!.value! - l.dim / detail.predictedThreshold) < 1e-9);
    assert.equal(m.baseline_probe_heldout_accuracy!.value, b[i]!.metrics.baseline_probe_heldout_accuracy!.value, 'seeded: same twin, same number');
  }
  // The first layer's input is the image itself (pixels / 255; ranks do not see the scale): its
  // per-class 95%-energy ranks from a plain SVD, r̂ their maximum, D*(r̂) = 2 · 1.25 · r̂(r̂+1)/2 for ReLU.
  const plainRanks = [0, 1, 2, 3].map((k) => {
    const rows: number[][] = [];
    for (let i = 0; i < data.y.length; i++) if (data.y[i] === k) rows.push(Array.from(data.pixels.subarray(i * 64, (i + 1) * 64)));
    const mean = rows[0]!.map((_, j) => rows.reduce((s, r) => s + r[j]!, 0) / rows.length);
    const sv = new SingularValueDecomposition(new Matrix(rows.map((r) => r.map((v, j) => v - mean[j]!)))).diagonal;
    const total = sv.reduce((s, v) => s + v * v, 0);
    let r = 0;
    for (let acc = 0; acc < 0.95 * total * (1 - 1e-12); ) acc += sv[r++]! ** 2;
    return r;
  });
  const first = a[0]!.metrics.baseline_width_ratio!.detail as { perClassInputRank: number[]; rHat: number; predictedThreshold: number };
  assert.deepEqual(first.perClassInputRank, plainRanks);
  const rHat = Math.max(...plainRanks);
  assert.equal(first.rHat, rHat);
  assert.ok(Math.abs(first.predictedThreshold - 2 * 1.25 * (rHat * (rHat + 1)) / 2) < 1e-12);
});

test('a probe spec as audit options, and flags laid over it (flags win; --dataset replaces the spec dataset whole)', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'spec.yaml');
  await writeFile(
    file,
    [
      'name: s',
      'dataset: { name: fashion-mnist, split: test, perClass: 7, seed: 3, labels: lab.idx }',
      'models:',
      '  - { name: a, path: a.onnx, layers: "op:Relu", input: { scale: 2 } }',
      '  - { path: sub/b.json, reduce: gap }',
      'metrics: [geometry, rank]',
      'ci: 0.9',
      'probePerClass: 50',
      'batchSize: 16',
    ].join('\n'),
  );
  const spec = auditOptionsFromSpec(await loadProbeSpec(file));
  assert.deepEqual(spec.models, [
    { path: path.join(dir, 'a.onnx'), name: 'a', preprocess: { scale: 2 }, layers: 'op:Relu' },
    { path: path.join(dir, 'sub/b.json'), preprocess: {}, reduce: 'gap' },
  ]);
  assert.equal(spec.dataset, 'fashion-mnist');
  assert.deepEqual(spec.datasetOptions, { split: 'test', labels: path.join(dir, 'lab.idx') });
  assert.deepEqual([spec.perClass, spec.seed, spec.ci, spec.batchSize, spec.name, spec.probePerClass], [7, 3, 0.9, 16, 's', 50]);
  assert.deepEqual(spec.metrics, ['geometry', 'rank']);

  const base = { spec: file, force: false, json: false, quiet: true } as const;
  const flags = await auditOptionsFrom({ ...base, layers: 'all', metrics: 'probe', 'per-class': 2, scale: 5 } as AuditArgs);
  assert.deepEqual(flags.models.map((m) => [m.layers, m.preprocess?.scale, m.reduce]), [['all', 5, undefined], ['all', 5, 'gap']]);
  assert.deepEqual(flags.metrics, ['probe']);
  assert.deepEqual([flags.perClass, flags.seed, flags.datasetOptions], [2, 3, { split: 'test', labels: path.join(dir, 'lab.idx') }]);
  const other = await auditOptionsFrom({ ...base, dataset: 'mnist' } as AuditArgs);
  assert.deepEqual([other.dataset, other.perClass, other.datasetOptions], ['mnist', undefined, {}]);
});

test('labels with a stray large value: the empty classes it implies are named in the warnings', async () => {
  const { dir, model } = await fixture();
  const { images, labels } = syntheticImages(240, 4, 5, 8);
  labels[0] = labels[1] = 9; // classes 0..9 from unnamed labels; 4..8 have no items
  const b = idxBytes(images, 240, 8, 8, labels);
  await writeFile(path.join(dir, 'x-images-idx3-ubyte'), b.images);
  await writeFile(path.join(dir, 'x-labels-idx1-ubyte'), b.labels);
  const res = await audit({ models: [{ path: model }], dataset: path.join(dir, 'x-images-idx3-ubyte'), datasetOptions: { labels: path.join(dir, 'x-labels-idx1-ubyte') }, metrics: ['geometry'], out: path.join(dir, 'stray') });
  assert.ok(res.report.warnings.some((w) => /^5 of the 10 classes \(0\.\.9\) have no items in the dataset/.test(w)), res.report.warnings.join(' | '));
});

test('NC3 of the shipped TF.js MLP equals a plain computation from dense_2 activations and the logits kernel read from weights.bin', async () => {
  const dir = await tempDir();
  const model = path.join(ROOT, 'models/fmnist-mlp/model.json');
  const common = { dataset: 'fashion-mnist', perClass: 30 };
  const res = await audit({ ...common, models: [{ path: model }], metrics: ['collapse'], out: path.join(dir, 'a') });
  const layers = res.report.models[0]!.layers;
  assert.deepEqual(layers.filter((l) => l.metrics.nc3).map((l) => l.id), ['dense_2']);
  await extract({ ...common, model, layers: ['dense_2'], out: path.join(dir, 'x') });
  const a = await readNpy(path.join(dir, 'x/dense_2.npy'));
  const y = (await readNpy(path.join(dir, 'x/labels.npy'))).data as Int32Array;
  const [n, d] = a.shape as [number, number];
  // The logits kernel is the 5th weight (after dense_1 and dense_2 kernels and biases), stored d×K.
  const json = JSON.parse(await readFile(path.join(ROOT, 'models/fmnist-mlp/model.json'), 'utf8')) as { weightsManifest: { weights: { name: string; shape: number[] }[] }[] };
  const specs = json.weightsManifest[0]!.weights;
  let offset = 0;
  for (const w of specs) {
    if (w.name === 'logits/kernel') break;
    offset += w.shape.reduce((p, q) => p * q, 1);
  }
  const bin = await readFile(path.join(ROOT, 'models/fmnist-mlp/weights.bin'));
  const K = 10;
  const W = Array.from({ length: K }, (_, k) => Array.from({ length: d }, (_, j) => bin.readFloatLE(4 * (offset + j * K + k))));
  const mu = Array.from({ length: K }, () => new Array<number>(d).fill(0));
  const cnt = new Array<number>(K).fill(0);
  for (let i = 0; i < n; i++) {
    cnt[y[i]!]!++;
    for (let j = 0; j < d; j++) mu[y[i]!]![j]! += Number(a.data[i * d + j]);
  }
  mu.forEach((m, k) => m.forEach((_, j) => (m[j]! /= cnt[k]!)));
  const g = Array.from({ length: d }, (_, j) => mu.reduce((s, m, k) => s + (cnt[k]! / n) * m[j]!, 0));
  const mt = mu.map((m) => m.map((v, j) => v - g[j]!));
  const fro = (rows: number[][]) => Math.sqrt(rows.reduce((s, r) => s + r.reduce((t, v) => t + v * v, 0), 0));
  const wn = fro(W);
  const mn = fro(mt);
  const want = W.reduce((s, r, k) => s + r.reduce((t, v, j) => t + (v / wn - mt[k]![j]! / mn) ** 2, 0), 0);
  const got = layers.find((l) => l.id === 'dense_2')!.metrics.nc3!.value!;
  assert.ok(Math.abs(got - want) < 1e-6 * want, `NC3 ${got} vs plain ${want}`);
});

test('NC3 is measured only at the head input kept whole; otherwise the warnings say why', async () => {
  const { dir, data, model } = await fixture();
  const run = async (out: string, extra: { layers?: string; reduce?: string }) =>
    (await audit({ models: [{ path: model, ...extra }], dataset: data.images, metrics: ['collapse'], out: path.join(dir, out) })).report;
  const whole = await run('n0', {});
  assert.deepEqual(whole.models[0]!.layers.filter((l) => l.metrics.nc3).map((l) => l.id), ['h2']);
  const other = await run('n1', { layers: 'h1' });
  assert.ok(other.models[0]!.layers.every((l) => !l.metrics.nc3));
  assert.ok(other.warnings.some((w) => /NC3 skipped: its input `h2` is not among the selected layers/.test(w)), other.warnings.join(' | '));
  const reduced = await run('n2', { reduce: 'project:3' });
  assert.ok(reduced.warnings.some((w) => /NC3 skipped: its input `h2` is reduced \(project/.test(w)), reduced.warnings.join(' | '));
});
