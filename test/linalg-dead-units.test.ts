/**
 * The symmetric eigen-solver on the matrices dead ReLU units produce: exact zero rows and
 * columns, many zero eigenvalues, and Grams whose dead block is rounding noise (where the
 * neighbour-relative QL deflation test never passes and the iteration used to give up). Checked
 * against ml-matrix's EigenvalueDecomposition, on constructed cases and on real layers: the shipped
 * MLP with a block of units zeroed, and a PyTorch CNN whose fc1 has 64 of 96 units dead (numpy's
 * SVD in test/fixtures/torch-fmnist-cnn/expected.json).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { gram } from '../src/linalg/ort-ops.js';
import { centredRows, symEig, symEigenvalues } from '../src/linalg/dense.js';
import { centredSpectrum, rank } from '../src/metrics/rank.js';
import { extract } from '../src/pipeline/extract.js';
import { readNpy } from '../src/data/npy.js';
import { ROOT, tempDir } from './helpers/fixtures.js';

const MLP = path.join(ROOT, 'models/fmnist-mlp/model.onnx');
const TORCH = path.join(ROOT, 'test/fixtures/torch-fmnist-cnn');
const TEST_SET = path.join(ROOT, 'datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');

function reference(S: Float64Array, n: number): number[] {
  const rows = Array.from({ length: n }, (_, i) => Array.from(S.subarray(i * n, (i + 1) * n)));
  return new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true }).realEigenvalues.sort((a, b) => b - a);
}

/** Eigenvalues and eigenvectors both: values against ml-matrix, vectors by ‖A V − V Λ‖ and VᵀV = I. */
function checkAgainstReference(S: Float64Array, n: number, label: string): void {
  const ref = reference(S, n);
  const scale = Math.max(1e-300, ...ref.map(Math.abs));
  const values = symEigenvalues(S, n);
  ref.forEach((v, i) => assert.ok(Math.abs(values[i]! - v) <= 1e-10 * scale, `${label} λ${i}: ${values[i]} vs ${v}`));
  const eig = symEig(S, n);
  ref.forEach((v, i) => assert.ok(Math.abs(eig.values[i]! - v) <= 1e-10 * scale, `${label} symEig λ${i}`));
  let resid = 0;
  let orth = 0;
  for (let j = 0; j < n; j++) {
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let c = 0; c < n; c++) s += S[r * n + c]! * eig.vectors[c * n + j]!;
      resid = Math.max(resid, Math.abs(s - eig.values[j]! * eig.vectors[r * n + j]!));
    }
    for (let q = j; q < Math.min(n, j + 3); q++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += eig.vectors[r * n + j]! * eig.vectors[r * n + q]!;
      orth = Math.max(orth, Math.abs(s - (q === j ? 1 : 0)));
    }
  }
  assert.ok(resid <= 1e-9 * scale, `${label}: ‖Av − λv‖ = ${resid}`);
  assert.ok(orth <= 1e-9, `${label}: vectors not orthonormal (${orth})`);
}

/** The LCG and layer generator under which the old solver failed (trials 4 and 29 of 0..39). */
function deadReluGram(trial: number): Promise<Float64Array> {
  let s = trial + 7;
  const r = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const n = 1000;
  const d = 256;
  const alive = new Set<number>();
  while (alive.size < 41) alive.add(Math.floor(r() * d));
  const W = Array.from({ length: 8 }, () => Array.from({ length: d }, () => r() - 0.5));
  const X = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const z = W.map(() => r() - 0.5);
    for (const j of alive) {
      let v = 0;
      for (let q = 0; q < 8; q++) v += z[q]! * W[q]![j]!;
      X[i * d + j] = Math.fround(Math.max(0, v + (trial % 3 ? 0 : 0.01 * r())));
    }
  }
  return gram(centredRows(X, n, d).centred, n, d);
}

test('215 of 256 ReLU units dead: the Gram (rounding noise in the dead block) has its eigenvalues and vectors found', async () => {
  for (const trial of [4, 29, 0, 1]) checkAgainstReference(await deadReluGram(trial), 256, `trial ${trial}`);
});

test('exact zero rows and columns scattered through the matrix, and many zero eigenvalues', () => {
  let s = 3;
  const r = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  for (const [n, rk] of [
    [40, 3],
    [120, 10],
    [7, 1],
  ] as const) {
    // S = U Uᵀ with U n×rk, then every third row and column zeroed.
    const U = Float64Array.from({ length: n * rk }, r);
    const S = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i % 3 && j % 3) for (let q = 0; q < rk; q++) S[i * n + j]! += U[i * rk + q]! * U[j * rk + q]!;
    checkAgainstReference(S, n, `n=${n} rank ${rk}`);
    const zeros = symEigenvalues(S, n).filter((v) => Math.abs(v) < 1e-12).length;
    assert.ok(zeros >= n - rk, `n=${n}: ${zeros} zero eigenvalues, expected ≥ ${n - rk}`);
  }
  // Diagonal with long zero runs, and a tridiagonal whose off-diagonal entries sit on zeros.
  const n = 30;
  const D = new Float64Array(n * n);
  for (let i = 0; i < n; i++) D[i * n + i] = i % 5 === 0 ? i + 1 : 0;
  for (let i = 0; i + 1 < n; i++) if (i % 7 === 2) D[i * n + i + 1] = D[(i + 1) * n + i] = 1e-14;
  checkAgainstReference(D, n, 'sparse diagonal');
});

test('a block of dead units inside a real layer (shipped MLP dense_1, units 40..199 zeroed): eigenvalues match ml-matrix and rank runs', async (t) => {
  if (!existsSync(MLP) || !existsSync(TEST_SET)) {
    t.skip('needs models/fmnist-mlp and datasets/fashion-mnist');
    return;
  }
  const dir = await tempDir();
  const ex = await extract({ model: MLP, dataset: 'fashion-mnist', perClass: 60, layers: 'dense_1', out: path.join(dir, 'x') });
  const a = await readNpy(path.join(dir, 'x', ex.manifest.models[0]!.layers[0]!.file!));
  const [n, d] = [a.shape[0]!, a.shape[1]!];
  const X = new Float32Array(a.data as Float32Array);
  for (let i = 0; i < n; i++) X.fill(0, i * d + 40, i * d + 200);
  const G = await gram(centredRows(X, n, d).centred, n, d);
  checkAgainstReference(G, d, 'dense_1 with a dead block');
  const [nr] = await rank({ X, n, d });
  assert.ok(nr!.value > 0 && nr!.value <= 96, `numerical rank ${nr!.value} within the ${d - 160} live units`);
  // The rank is of these rows: basis says how many, and whether they are a sample of more.
  assert.deepEqual([nr!.basis!.n, nr!.basis!.sampled], [n, true]);
  const [all] = await rank({ X, n, d }, { population: n });
  assert.equal(all!.basis!.sampled, false);
  assert.equal(all!.value, nr!.value);
});

test('PyTorch CNN with 64 of 96 fc1 units dead: the centred spectrum of 1,000 test images matches numpy', async (t) => {
  if (!existsSync(path.join(TORCH, 'model.onnx')) || !existsSync(TEST_SET)) {
    t.skip('needs test/fixtures/torch-fmnist-cnn and datasets/fashion-mnist');
    return;
  }
  const expected = JSON.parse(readFileSync(path.join(TORCH, 'expected.json'), 'utf8')) as { fc1DeadUnits: number; fc1SingularValuesFirst1000: number[] };
  assert.ok(expected.fc1DeadUnits >= 64, 'the fixture has its dead units');
  const dir = await tempDir();
  const ex = await extract({ model: path.join(TORCH, 'model.onnx'), dataset: TEST_SET, layers: '/Relu_2_output_0', out: path.join(dir, 'x') });
  const a = await readNpy(path.join(dir, 'x', ex.manifest.models[0]!.layers[0]!.file!));
  const d = a.shape[1]!;
  const n = 1000;
  const X = (a.data as Float32Array).subarray(0, n * d);
  const s = await centredSpectrum(X, n, d);
  const ref = expected.fc1SingularValuesFirst1000;
  // Live directions agree to float32 rounding of the activations; the dead ones are 0 in both.
  ref.forEach((v, i) => assert.ok(Math.abs(s[i]! - v) <= 1e-4 * ref[0]!, `σ${i}: ${s[i]} vs numpy ${v}`));
  assert.ok(s.filter((v) => v === 0).length >= expected.fc1DeadUnits, 'dead units give zero singular values');
});
