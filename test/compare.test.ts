import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { reportSchema } from '../src/report/schema.js';
import type { MetricRow } from '../src/report/records.js';
import { audit } from '../src/pipeline/audit.js';
import { extract } from '../src/pipeline/extract.js';
import { readNpy } from '../src/data/npy.js';
import { cli, hasShared, randomMlp, sharedPath, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

test('compare: one record per (model, layer, metric), CSV, CKA = 1 between a model and its copy', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 120, 3, { seed: 9 });
  const a = path.join(dir, 'a.onnx');
  const b = path.join(dir, 'b.onnx');
  await writeOnnxMlp(a, randomMlp([64, 10, 6, 3], 1));
  await writeOnnxMlp(b, randomMlp([64, 10, 6, 3], 2));
  const out = path.join(dir, 'cmp');
  const r = cli(['compare', '--models', `${a},${b},${a}`, '-d', data.images, '--metrics', 'geometry,probe', '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = (JSON.parse(r.stdout) as { result: MetricRow[] }).result;
  const report = reportSchema.parse(JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')));
  assert.deepEqual(report.models.map((m) => m.name), ['a', 'b', 'a-2']);
  const expected = report.models.reduce((s, m) => s + (m.accuracy ? 1 : 0) + m.layers.reduce((t, l) => t + Object.keys(l.metrics).length, 0), 0);
  assert.equal(rows.length, expected);
  assert.ok(rows.every((x) => ['a', 'b', 'a-2'].includes(x.model)));
  const csv = (await readFile(path.join(out, 'metrics.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv.length, rows.length + 1);
  const sim = report.similarity!;
  assert.equal(sim.layers.length, 6);
  const idx = (model: string, layer: string) => sim.layers.findIndex((l) => l.model === model && l.layer === layer);
  for (const layer of ['h1', 'h2']) {
    assert.ok(Math.abs(sim.matrix[idx('a', layer)]![idx('a-2', layer)]! - 1) < 1e-6, 'a copy of a model is CKA-identical');
    assert.ok(sim.matrix[idx('a', layer)]![idx('b', layer)]! < 0.999, 'another model is not');
  }
  for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) assert.equal(sim.matrix[i]![j], sim.matrix[j]![i]);
  // similarity.csv: the same matrix in long form, one row per ordered layer pair.
  const simRows = (await readFile(path.join(out, 'similarity.csv'), 'utf8')).trim().split('\n');
  assert.equal(simRows[0], 'method,modelA,layerA,depthA,modelB,layerB,depthB,cka');
  assert.equal(simRows.length, 1 + 36);
  for (const [t, row] of simRows.slice(1).entries()) {
    const c = row.split(',');
    const [i, j] = [Math.floor(t / 6), t % 6];
    assert.deepEqual([c[1], c[2], c[4], c[5]], [sim.layers[i]!.model, sim.layers[i]!.layer, sim.layers[j]!.model, sim.layers[j]!.layer]);
    assert.equal(Number(c[7]), sim.matrix[i]![j]);
  }
  // summary.txt carries compare's trend and CKA tables too.
  const summary = await readFile(path.join(out, 'summary.txt'), 'utf8');
  assert.match(summary, /^layerprobe compare — /);
  assert.match(summary, /C ratio\/layer/);
  assert.match(summary, /linear CKA on \d+ samples/);
  // The page holds exactly the models and layers of report.json.
  const html = await readFile(path.join(out, 'report.html'), 'utf8');
  for (const m of report.models) for (const l of m.layers) assert.ok(html.includes(`data-model="${m.name}"`) && html.includes(`data-layer="${l.id}"`));
});

/** Centred Gram H X Xᵀ H of an n×d float32 matrix, in float64, by plain loops. */
function centredGram(X: Float32Array, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += X[i * d + j]! / n;
  const C = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) C[i * d + j] = X[i * d + j]! - mean[j]!;
  const G = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let b = a; b < n; b++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += C[a * d + j]! * C[b * d + j]!;
      G[a * n + b] = s;
      G[b * n + a] = s;
    }
  }
  return G;
}

/** Unbiased HSIC (Song et al. 2012) from two Grams; the diagonal is dropped. */
function hsicUnbiased(K: Float64Array, L: Float64Array, n: number): number {
  let tr = 0;
  let sK = 0;
  let sL = 0;
  let cross = 0;
  const rowL = new Float64Array(n);
  const rowK = new Float64Array(n);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      if (a === b) continue;
      tr += K[a * n + b]! * L[b * n + a]!;
      sK += K[a * n + b]!;
      sL += L[a * n + b]!;
      rowK[a]! += K[a * n + b]!;
      rowL[a]! += L[a * n + b]!;
    }
  }
  for (let a = 0; a < n; a++) cross += rowK[a]! * rowL[a]!;
  return (tr + (sK * sL) / ((n - 1) * (n - 2)) - (2 / (n - 2)) * cross) / (n * (n - 3));
}

test('compare a real ONNX CNN and a real TF.js LeNet: the CKA matrix (linear and debiased) equals a plain Gram computation', async (t) => {
  if (!hasShared('models/mnist-cnn-deepeverest.onnx') || !hasShared('models/lenet-keras-layers/model.json') || !hasShared('data/mnist/t10k-images-idx3-ubyte.gz')) {
    t.skip('needs ../shared/assets models (DeepEverest ONNX, LeNet keras) and data/mnist (absent)');
    return;
  }
  const dir = await tempDir();
  const paths = [sharedPath('models/mnist-cnn-deepeverest.onnx'), sharedPath('models/lenet-keras-layers/model.json')];
  const common = { dataset: sharedPath('data/mnist/t10k-images-idx3-ubyte.gz'), perClass: 20, reduce: 'flatten' };
  const grams: { model: string; layer: string; G: Float64Array }[] = [];
  let n = 0;
  for (const [i, p] of paths.entries()) {
    const ex = await extract({ ...common, model: p, out: path.join(dir, `x${i}`) });
    for (const l of ex.manifest.models[0]!.layers) {
      if (!l.file || l.id === 'output') continue;
      const a = await readNpy(path.join(dir, `x${i}`, l.file));
      n = a.shape[0]!;
      grams.push({ model: String(i), layer: l.id, G: centredGram(a.data as Float32Array, n, a.shape[1]!) });
    }
  }
  for (const method of ['linear', 'debiased'] as const) {
    const res = await audit({ ...common, models: paths.map((p) => ({ path: p })), metrics: ['geometry'], similarity: method, out: path.join(dir, method) });
    const sim = res.report.similarity!;
    assert.equal(sim.n, n);
    const names = res.report.models.map((m) => m.name);
    const at = sim.layers.map((l) => grams.findIndex((g) => g.model === String(names.indexOf(l.model)) && g.layer === l.layer));
    assert.ok(at.every((k) => k >= 0), `every audited layer was extracted: ${sim.layers.map((l) => l.layer).join(', ')}`);
    assert.ok(new Set(sim.layers.map((l) => l.model)).size === 2 && sim.layers.length >= 5, `${sim.layers.length} layers`);
    const hs = (a: Float64Array, b: Float64Array) => {
      if (method === 'debiased') return hsicUnbiased(a, b, n);
      let s = 0;
      for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
      return s;
    };
    let worst = 0;
    for (let i = 0; i < at.length; i++) {
      for (let j = 0; j < at.length; j++) {
        const A = grams[at[i]!]!.G;
        const B = grams[at[j]!]!.G;
        const want = hs(A, B) / Math.sqrt(hs(A, A) * hs(B, B));
        worst = Math.max(worst, Math.abs(sim.matrix[i]![j]! - want));
      }
    }
    t.diagnostic(`${method} CKA: ${sim.layers.length} layers, largest difference from the plain computation ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-4, `${method}: ${worst}`);
  }
});
