/**
 * Low-rank structure and the Bayes action (SCIENCE.md §6, reconstructed): B̃ against a direct
 * computation, singular values against ml-matrix, principal angles on subspaces with known
 * angles, the synthetic local regime (small angles that grow with ε), classifier-head
 * detection (and the error without one), the CLI through a tiny yargs driver, and one run of the
 * shipped MLP against the shipped CNN on Fashion-MNIST.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import { extract } from '../src/pipeline/extract.js';
import { readNpy } from '../src/data/npy.js';
import { RuntimeFailure } from '../src/errors.js';
import { decodeModel } from '../src/runtime/onnx-graph.js';
import { OnnxGraphBuilder } from '../src/runtime/onnx-build.js';
import { openModel } from '../src/runtime/open.js';
import {
  anglesBetweenDeg,
  compareHeadSubspace,
  divergenceTransitionMatrix,
  dtmSpectrum,
  headGram,
  localJoint,
  lowrankModel,
  lowrankSynthetic,
  mmseMatrix,
  mmseSpectrum,
  scaledHead,
  type JointDistribution,
} from '../src/theory/lowrank/index.js';
import { onnxClassifierHead, readClassifierHead } from '../src/runtime/classifier-head.js';
import { ROOT, tempDir } from './helpers/fixtures.js';
import { runTheory, type CliRun } from './helpers/theory-cli.js';

function lowrank(args: string[]): CliRun {
  return runTheory(['lowrank', ...args]);
}

/** A hand-built 4×3 joint table P(x,y) (sums to 1), as P(x) and P(y|x). */
function handJoint(): { table: number[][]; joint: JointDistribution } {
  const raw = [
    [0.1, 0.05, 0.05],
    [0.02, 0.12, 0.06],
    [0.08, 0.08, 0.14],
    [0.05, 0.1, 0.15],
  ];
  const total = raw.flat().reduce((a, b) => a + b, 0);
  const table = raw.map((r) => r.map((v) => v / total));
  const px = Float64Array.from(table, (r) => r.reduce((a, b) => a + b, 0));
  const posterior = Float64Array.from(table.flatMap((r, x) => r.map((v) => v / px[x]!)));
  return { table, joint: { px, posterior, nx: 4, K: 3 } };
}

function mlSvd(rows: number[][]): SingularValueDecomposition {
  return new SingularValueDecomposition(new Matrix(rows), { autoTranspose: true });
}

/** Orthogonal projector onto the first k columns of a K×K row-major matrix. */
function projector(V: ArrayLike<number>, K: number, k: number, stride = K): number[][] {
  return Array.from({ length: K }, (_, a) => Array.from({ length: K }, (_, b) => {
    let s = 0;
    for (let j = 0; j < k; j++) s += V[a * stride + j]! * V[b * stride + j]!;
    return s;
  }));
}

test('B̃ matches the formula computed directly; singular values and vectors match ml-matrix; σ1 ≤ 1 and Σσ² = χ²', () => {
  const { table, joint } = handJoint();
  const py = [0, 1, 2].map((y) => table.reduce((s, r) => s + r[y]!, 0));
  const px = table.map((r) => r.reduce((a, b) => a + b, 0));
  const direct = table.map((r, x) => r.map((pxy, y) => (pxy - px[x]! * py[y]!) / Math.sqrt(px[x]! * py[y]!)));
  const B = divergenceTransitionMatrix(joint);
  direct.forEach((r, x) => r.forEach((v, y) => assert.ok(Math.abs(B[x * 3 + y]! - v) < 1e-14, `B̃(${x},${y})`)));

  const spec = dtmSpectrum(joint);
  const svd = mlSvd(direct);
  const ref = [...svd.diagonal].sort((a, b) => b - a);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(spec.singularValues[i]! - (ref[i] ?? 0)) < 1e-8, `σ${i + 1}: ${spec.singularValues[i]} vs ${ref[i]}`);
  assert.ok(spec.singularValues[0]! <= 1 && spec.singularValues[2]! < 1e-7, 'σ1 ≤ 1 (maximal correlation), √P(y) in the null space');
  let chi2 = 0;
  table.forEach((r, x) => r.forEach((pxy, y) => (chi2 += (pxy - px[x]! * py[y]!) ** 2 / (px[x]! * py[y]!))));
  assert.ok(Math.abs(spec.energy - chi2) < 1e-14);
  // The top class-side singular vector spans the same line as ml-matrix's (up to sign).
  const V = svd.rightSingularVectors;
  const order = svd.diagonal.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  const v1 = [0, 1, 2].map((r) => V.get(r, order[0]!));
  const dot = [0, 1, 2].reduce((s, r) => s + v1[r]! * spec.vectors[r * 3]!, 0);
  assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-9);

  // MMSE (one-hot Y): rows √P(x)(P(·|x) − P(y)) = B̃ · diag(√P(y)); its spectrum agrees with ml-matrix.
  const M = mmseMatrix(joint.px, joint.posterior, 3);
  direct.forEach((r, x) => r.forEach((v, y) => assert.ok(Math.abs(M[x * 3 + y]! - v * Math.sqrt(py[y]!)) < 1e-14)));
  const mm = mmseSpectrum(joint);
  const mref = [...mlSvd(Array.from({ length: 4 }, (_, x) => Array.from(M.subarray(x * 3, x * 3 + 3)))).diagonal].sort((a, b) => b - a);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(mm.singularValues[i]! - mref[i]!) < 1e-8);
});

test('principal angles on constructed subspaces; captured energy of the optimal and a rotated head', () => {
  // R^5: span{e1, e2} vs span{e1 (scaled), cos30 e2 + sin30 e3 + e1} (not orthonormal on purpose).
  const n = 5;
  const A = new Float64Array(n * 2);
  A[0 * 2 + 0] = 1;
  A[1 * 2 + 1] = 1;
  const t = (30 * Math.PI) / 180;
  const B = new Float64Array(n * 2);
  B[0 * 2 + 0] = 3;
  B[0 * 2 + 1] = 1;
  B[1 * 2 + 1] = Math.cos(t);
  B[2 * 2 + 1] = Math.sin(t);
  const ang = anglesBetweenDeg(A, B, n, 2, 2);
  assert.ok(Math.abs(ang[0]!) < 1e-6 && Math.abs(ang[1]! - 30) < 1e-9, `${ang}`);

  // A head whose 2-dim subspace is exactly B̃'s top two: angles 0, efficiency 1.
  const j = localJoint({ symbols: 12, classes: 5, epsilon: 0.3, seed: 4 });
  const spec = dtmSpectrum(j);
  const K = 5;
  const W = new Float64Array(K * 2);
  for (let y = 0; y < K; y++) for (let c = 0; c < 2; c++) W[y * 2 + c] = spec.vectors[y * K + c]! / Math.sqrt(spec.py[y]!);
  const H = scaledHead(W, K, 2, spec.py);
  const best = compareHeadSubspace(spec, headGram(H, K, 2), 2);
  assert.ok(best.maxAngleDeg < 1e-5, `${best.anglesDeg}`);
  assert.ok(Math.abs(best.efficiency - 1) < 1e-10);
  // Rotate the second direction by 40° towards the 4th singular vector: angles {0, 40}.
  const Wr = new Float64Array(K * 2);
  const c = Math.cos((40 * Math.PI) / 180);
  const s = Math.sin((40 * Math.PI) / 180);
  for (let y = 0; y < K; y++) {
    Wr[y * 2] = spec.vectors[y * K]! / Math.sqrt(spec.py[y]!);
    Wr[y * 2 + 1] = (c * spec.vectors[y * K + 1]! + s * spec.vectors[y * K + 3]!) / Math.sqrt(spec.py[y]!);
  }
  const rot = compareHeadSubspace(spec, headGram(scaledHead(Wr, K, 2, spec.py), K, 2), 2);
  assert.ok(Math.abs(rot.anglesDeg[0]!) < 1e-5 && Math.abs(rot.anglesDeg[1]! - 40) < 1e-6, `${rot.anglesDeg}`);
  const sv = spec.singularValues;
  const expected = (sv[0]! ** 2 + c * c * sv[1]! ** 2 + s * s * sv[3]! ** 2) / spec.energy;
  assert.ok(Math.abs(rot.capturedEnergy - expected) < 1e-12);
  assert.ok(rot.efficiency < 1);
});

test('local-regime generator: valid posteriors, exact marginals, and the constructed SVD (vs ml-matrix)', () => {
  const j = localJoint({ symbols: 16, classes: 6, rank: 3, epsilon: 0.5, seed: 2 });
  for (let x = 0; x < j.nx; x++) {
    let s = 0;
    for (let y = 0; y < j.K; y++) {
      const q = j.posterior[x * j.K + y]!;
      assert.ok(q >= 0.5 * j.py[y]! - 1e-12 && q <= 1.5 * j.py[y]! + 1e-12);
      s += q;
    }
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  const B = divergenceTransitionMatrix(j);
  const rows = Array.from({ length: j.nx }, (_, x) => Array.from(B.subarray(x * j.K, (x + 1) * j.K)));
  const ref = [...mlSvd(rows).diagonal].sort((a, b) => b - a);
  const spec = dtmSpectrum(j);
  for (let i = 0; i < j.K; i++) {
    const want = i < 3 ? j.singularValues[i]! : 0;
    assert.ok(Math.abs(ref[i]! - want) < 1e-10, `ml-matrix σ${i + 1}`);
    assert.ok(Math.abs(spec.singularValues[i]! - want) < (i < 3 ? 1e-10 : 1e-6), `Gram σ${i + 1}`);
  }
  assert.deepEqual(Array.from(spec.py, (v) => v.toFixed(12)), Array.from(j.py, (v) => v.toFixed(12)));
  // Singular vectors: projector onto the constructed top 3 = projector from the Gram path.
  const P1 = projector(j.classVectors, j.K, 3, 3);
  const P2 = projector(spec.vectors, j.K, 3);
  P1.forEach((r, a) => r.forEach((v, b) => assert.ok(Math.abs(v - P2[a]![b]!) < 1e-8)));
});

test('synthetic local regime with a bottleneck k = 2 < K − 1: small angles that grow with ε', () => {
  const res = lowrankSynthetic({ symbols: 24, classes: 6, k: 2, epsilons: [0.05, 0.2, 0.5, 0.9], seed: 0 });
  assert.equal(res.rows.length, 4);
  for (const r of res.rows) {
    assert.ok(r.converged, `ε = ${r.epsilon}: ‖∇‖ = ${r.gradNorm}`);
    assert.ok(r.spectrumError < 1e-6);
    assert.ok(r.efficiency <= 1 + 1e-12 && r.capturedEnergy <= r.optimalEnergy + 1e-12);
  }
  const maxAngles = res.rows.map((r) => r.maxAngleDeg);
  assert.ok(maxAngles[0]! < 1, `ε = 0.05: ${maxAngles[0]}°`);
  for (let i = 0; i < 3; i++) assert.ok(maxAngles[i]! < 5, `ε = ${res.rows[i]!.epsilon}: ${maxAngles[i]}°`);
  for (let i = 1; i < maxAngles.length; i++) assert.ok(maxAngles[i]! > maxAngles[i - 1]!, `angles grow with ε: ${maxAngles.join(', ')}`);
  assert.ok(res.monotone);
  // Roughly linear in ε for small ε (the local approximation's error is first order).
  const ratio = maxAngles[1]! / maxAngles[0]!;
  assert.ok(ratio > 2.5 && ratio < 6, `θ(0.2)/θ(0.05) = ${ratio}`);
});

/** Input [N,4] → Gemm(4→3) → Relu → L2 normalisation: an embedding, a feature extractor with no classifier head (a bare ReLU after a Gemm counts as a head now). */
function featureExtractor(): Uint8Array {
  const g = new OnnxGraphBuilder();
  g.input('x', ['N', 4]);
  g.initializer('w', Float32Array.from({ length: 12 }, (_, i) => (i % 5) * 0.1 - 0.2), [4, 3]);
  g.initializer('b', new Float32Array(3), [3]);
  g.node('Gemm', ['x', 'w', 'b'], ['z']);
  g.node('Relu', ['z'], ['r']);
  g.node('LpNormalization', ['r'], ['features']); // defaults: p = 2 over the last axis
  g.output('features', ['N', 3]);
  return g.toBytes();
}

test('classifier heads: MatMul + Add + Softmax is read (weights transposed to K×d); a feature extractor is refused with the reason', async () => {
  const g = new OnnxGraphBuilder();
  const w = Float32Array.from({ length: 12 }, (_, i) => i - 5);
  g.input('x', ['N', 4]);
  g.initializer('w', w, [4, 3]);
  g.initializer('b', Float32Array.of(0.1, 0.2, 0.3), [3]);
  g.node('MatMul', ['x', 'w'], ['mm']);
  g.node('Add', ['mm', 'b'], ['logits']);
  g.node('Softmax', ['logits'], ['probs'], { axis: 1 });
  g.output('probs', ['N', 3]);
  const head = onnxClassifierHead(decodeModel(g.toBytes()), 'tiny');
  assert.equal(head.K, 3);
  assert.equal(head.d, 4);
  assert.equal(head.inputLayer, 'x');
  for (let y = 0; y < 3; y++) for (let c = 0; c < 4; c++) assert.equal(head.W[y * 4 + c], w[c * 3 + y]);
  assert.deepEqual(Array.from(head.bias!, (v) => Number(v.toFixed(6))), [0.1, 0.2, 0.3]);

  assert.throws(() => onnxClassifierHead(decodeModel(featureExtractor()), 'fx'), (e: unknown) => e instanceof RuntimeFailure && /no detectable classifier head/.test(e.message) && /LpNormalization/.test(e.message));
  const dir = await tempDir();
  const file = path.join(dir, 'fx.onnx');
  await writeFile(file, featureExtractor());
  const runner = await openModel(file);
  try {
    await assert.rejects(readClassifierHead(runner), /no detectable classifier head: its output `features` is produced by LpNormalization/);
  } finally {
    await runner.dispose();
  }
});

test('theory lowrank CLI: --json synthetic run, --out writes result.json, usage errors exit 2, a headless model exits 1', async () => {
  const dir = await tempDir();
  const out = path.join(dir, 'lr');
  const r = lowrank(['--symbols', '16', '--classes', '5', '--k', '2', '--epsilon', '0.05,0.3,0.7', '--json', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const res = (JSON.parse(r.stdout) as { result: unknown }).result as { mode: string; k: number; rows: { epsilon: number; maxAngleDeg: number; anglesDeg: number[] }[]; monotone: boolean };
  assert.equal(res.mode, 'synthetic');
  assert.deepEqual(res.rows.map((x) => x.epsilon), [0.05, 0.3, 0.7]);
  for (const x of res.rows) assert.equal(x.anglesDeg.length, 2);
  assert.ok(res.rows[0]!.maxAngleDeg < 5);
  const file = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as typeof res;
  assert.deepEqual(file.rows, res.rows);
  assert.equal(lowrank(['--out', out, '-q']).code, 2, 'never over an existing folder without --force');

  for (const args of [['--epsilon', '1.5'], ['--epsilon', 'abc'], ['--k', '0'], ['--classes', '1'], ['--bogus-flag'], ['--model', 'models/fmnist-mlp'], ['--reference', 'models/fmnist-cnn']]) {
    const bad = lowrank(args);
    assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  }
  const fx = path.join(dir, 'fx.onnx');
  await writeFile(fx, featureExtractor());
  const headless = lowrank(['--model', fx, '--reference', 'models/fmnist-cnn', '--dataset', 'fashion-mnist', '--limit', '10']);
  assert.equal(headless.code, 1, headless.stderr);
  assert.match(headless.stderr, /no detectable classifier head/);
  assert.ok(!existsSync(path.join(dir, 'never')));
});

test('model mode: the shipped MLP head against the CNN posteriors on 200 Fashion-MNIST test images', async () => {
  const res = await lowrankModel({ model: path.join(ROOT, 'models/fmnist-mlp'), reference: path.join(ROOT, 'models/fmnist-cnn'), dataset: 'fashion-mnist', perClass: 20, seed: 0 });
  assert.equal(res.items, 200);
  assert.equal(res.K, 10);
  assert.equal(res.head.d, 256);
  assert.equal(res.head.inputLayer, 'dense_2');
  assert.ok(Math.abs(res.py.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  for (const s of [res.referenceDtm, res.selfDtm, res.mmse]) {
    assert.ok(s.singularValues.every((v) => Number.isFinite(v) && v >= 0 && v <= 1 + 1e-9));
    assert.ok(Number.isFinite(s.energy) && s.energy > 0);
  }
  assert.ok(res.accuracy.model > 0.6 && res.accuracy.reference > 0.6);
  assert.equal(res.rows.length, 9);
  for (const row of res.rows) {
    for (const c of [row.raw, row.whitened, row.whitenedSelf]) {
      assert.ok(c !== null);
      for (const a of c.anglesDeg) assert.ok(Number.isFinite(a) && a >= 0 && a <= 90 + 1e-9, `k = ${row.k}: ${a}`);
      assert.ok(c.capturedEnergy >= 0 && c.capturedEnergy <= c.optimalEnergy + 1e-9);
    }
  }
  // k = K − 1: both subspaces are the whole complement of √P(y).
  assert.ok(res.rows[8]!.raw.maxAngleDeg < 1e-4);
  // The spectra against a plain SVD of the N×K matrices built from each model's posteriors on the
  // same 200 images: B̃_{iy} = (q_i(y) − P(y)) / √(N·P(y)) and M_{iy} = (q_i(y) − P(y)) / √N.
  const dir = await tempDir();
  const posteriors = async (model: string, out: string) => {
    await extract({ model, dataset: 'fashion-mnist', perClass: 20, seed: 0, layers: [], out: path.join(dir, out) });
    const o = await readNpy(path.join(dir, out, 'output.npy'));
    const [n, K] = o.shape as [number, number];
    const rows = Array.from({ length: n }, (_, i) => Array.from({ length: K }, (_, y) => Number(o.data[i * K + y])));
    const isProb = rows.every((r) => r.every((v) => v >= 0) && Math.abs(r.reduce((a, b) => a + b, 0) - 1) < 1e-3);
    return isProb
      ? rows
      : rows.map((r) => {
          const mx = Math.max(...r);
          const e = r.map((v) => Math.exp(v - mx));
          const z = e.reduce((a, b) => a + b, 0);
          return e.map((v) => v / z);
        });
  };
  const spectrum = (q: number[][], dtm: boolean) => {
    const N = q.length;
    const py = q[0]!.map((_, y) => q.reduce((s, r) => s + r[y]!, 0) / N);
    const B = new Matrix(q.map((r) => r.map((v, y) => (v - py[y]!) / Math.sqrt(N * (dtm ? py[y]! : 1)))));
    return new SingularValueDecomposition(B).diagonal;
  };
  const qRef = await posteriors(path.join(ROOT, 'models/fmnist-cnn'), 'ref');
  const qSelf = await posteriors(path.join(ROOT, 'models/fmnist-mlp'), 'self');
  const close = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-6, `${what} σ_${i + 1}: ${got[i]} vs plain ${want[i]}`);
  };
  close(res.referenceDtm.singularValues, spectrum(qRef, true), 'reference B̃');
  close(res.selfDtm.singularValues, spectrum(qSelf, true), 'model B̃');
  close(res.mmse.singularValues, spectrum(qRef, false), 'MMSE M');
});
