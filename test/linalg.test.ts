import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EigenvalueDecomposition, Matrix, pseudoInverse, SingularValueDecomposition } from 'ml-matrix';
import { crossGram, gram, matmul, outerGram } from '../src/linalg/ort-ops.js';
import { centredRows, pinvSym, singularValues, symEig, symEigenvalues, symTopEig, trace } from '../src/linalg/dense.js';
import { Rng } from '../src/util/rng.js';
import { choleskyInPlace, choleskyInverse, choleskySolve, logDetFromCholesky } from '../src/linalg/chol.js';

function randArray(rng: Rng, len: number, scale = 1, offset = 0): Float64Array {
  const a = new Float64Array(len);
  for (let i = 0; i < len; i++) a[i] = offset + scale * rng.normal();
  return a;
}

/** Max entry-wise error relative to the largest entry of the expected matrix. */
function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  }
  return scale > 0 ? err / scale : err;
}

function plainMatMul(A: ArrayLike<number>, B: ArrayLike<number>, m: number, k: number, n: number, transA = false, transB = false): Float64Array {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (transA ? A[p * m + i]! : A[i * k + p]!) * (transB ? B[j * k + p]! : B[p * n + j]!);
      C[i * n + j] = s;
    }
  }
  return C;
}

test('gram (float32, several row blocks) equals plain loops within 1e-5', async () => {
  const rng = new Rng(1);
  const n = 9000;
  const d = 7;
  const X64 = randArray(rng, n * d, 2, 0.5);
  const X = Float32Array.from(X64);
  const G = await gram(X, n, d);
  const ref = plainMatMul(X, X, d, n, d, true, false);
  assert.ok(relErr(G, ref) < 1e-5, `rel err ${relErr(G, ref)}`);
});

test('gram, crossGram, outerGram and matmul in float64 agree with plain loops to 1e-12', async () => {
  const rng = new Rng(2);
  const n = 37;
  const d1 = 5;
  const d2 = 9;
  const X = randArray(rng, n * d1);
  const Y = randArray(rng, n * d2);
  assert.ok(relErr(await gram(X, n, d1), plainMatMul(X, X, d1, n, d1, true)) < 1e-12);
  assert.ok(relErr(await crossGram(X, Y, n, d1, d2), plainMatMul(X, Y, d1, n, d2, true)) < 1e-12);
  assert.ok(relErr(await outerGram(X, n, d1), plainMatMul(X, X, n, d1, n, false, true)) < 1e-12);
  const B = randArray(rng, d1 * d2);
  assert.ok(relErr(await matmul(X, B, n, d1, d2), plainMatMul(X, B, n, d1, d2)) < 1e-12);
});

test('crossGram and matmul in float32 agree with plain loops to 1e-5', async () => {
  const rng = new Rng(3);
  const n = 50;
  const X = Float32Array.from(randArray(rng, n * 4));
  const Y = Float32Array.from(randArray(rng, n * 6));
  assert.ok(relErr(await crossGram(X, Y, n, 4, 6), plainMatMul(X, Y, 4, n, 6, true)) < 1e-5);
  const B = Float32Array.from(randArray(rng, 4 * 3));
  const C = await matmul(X, B, n, 4, 3);
  assert.ok(C instanceof Float32Array);
  assert.ok(relErr(C, plainMatMul(X, B, n, 4, 3)) < 1e-5);
});

test('products reject arrays whose length does not match the shape', async () => {
  await assert.rejects(gram(new Float32Array(5), 2, 3), /shape implies 6/);
});

test('symEigenvalues matches ml-matrix on random, rank-deficient and repeated-eigenvalue matrices', () => {
  const rng = new Rng(4);
  const cases: [Float64Array, number][] = [];
  for (const n of [1, 2, 3, 10, 60]) {
    const A = randArray(rng, n * n);
    const S = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) S[i * n + j] = A[i * n + j]! + A[j * n + i]!;
    cases.push([S, n]);
  }
  // Rank 2 in 8 dimensions, and a multiple of the identity (all eigenvalues equal).
  const U = randArray(rng, 8 * 2);
  cases.push([plainMatMul(U, U, 8, 2, 8, false, true), 8]);
  const I = new Float64Array(16);
  for (let i = 0; i < 4; i++) I[i * 4 + i] = 3;
  cases.push([I, 4]);
  cases.push([new Float64Array(9), 3]);
  for (const [S, n] of cases) {
    const ref = new EigenvalueDecomposition(new Matrix(Array.from({ length: n }, (_, i) => Array.from(S.subarray(i * n, (i + 1) * n)))), {
      assumeSymmetric: true,
    }).realEigenvalues.sort((a, b) => b - a);
    const mine = symEigenvalues(S, n);
    const scale = Math.max(1, ...ref.map(Math.abs));
    ref.forEach((v, i) => assert.ok(Math.abs(mine[i]! - v) <= 1e-12 * scale, `n=${n} i=${i}: ${mine[i]} vs ${v}`));
  }
});

test('symEig reconstructs the matrix with orthonormal vectors; values and vectors match ml-matrix', () => {
  const rng = new Rng(5);
  const cases: [Float64Array, number][] = [];
  for (const n of [1, 2, 6, 40]) {
    const A = randArray(rng, n * n);
    cases.push([plainMatMul(A, A, n, n, n, false, true), n]);
  }
  const U = randArray(rng, 9 * 3);
  cases.push([plainMatMul(U, U, 9, 3, 9, false, true), 9]); // rank 3: a 6-fold zero eigenvalue
  const I = new Float64Array(25);
  for (let i = 0; i < 5; i++) I[i * 5 + i] = 2;
  cases.push([I, 5], [new Float64Array(16), 4]);
  for (const [S, n] of cases) {
    const { values, vectors } = symEig(S, n);
    for (let i = 1; i < n; i++) assert.ok(values[i - 1]! >= values[i]!);
    const R = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) R[i * n + j]! += vectors[i * n + k]! * values[k]! * vectors[j * n + k]!;
    assert.ok(relErr(R, S) < 1e-12, `n=${n} reconstruction ${relErr(R, S)}`);
    const VtV = plainMatMul(vectors, vectors, n, n, n, true);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.ok(Math.abs(VtV[i * n + j]! - (i === j ? 1 : 0)) < 1e-12);
    const ref = new EigenvalueDecomposition(new Matrix(Array.from({ length: n }, (_, i) => Array.from(S.subarray(i * n, (i + 1) * n)))), {
      assumeSymmetric: true,
    });
    const order = ref.realEigenvalues.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
    const scale = Math.max(1, Math.abs(order[0]![0]));
    order.forEach(([v, src], j) => {
      assert.ok(Math.abs(values[j]! - v) <= 1e-12 * scale);
      // A simple eigenvalue fixes its vector up to sign.
      const gap = Math.min(j > 0 ? order[j - 1]![0] - v : Infinity, j < n - 1 ? v - order[j + 1]![0] : Infinity);
      if (gap > 1e-6 * scale) {
        let dotp = 0;
        for (let i = 0; i < n; i++) dotp += vectors[i * n + j]! * ref.eigenvectorMatrix.get(i, src);
        assert.ok(Math.abs(Math.abs(dotp) - 1) < 1e-9, `n=${n} vector ${j}: |cos| ${Math.abs(dotp)}`);
      }
    });
  }
  assert.deepEqual(symEig(new Float64Array(0), 0), { values: new Float64Array(0), vectors: new Float64Array(0) });
});

test('symTopEig: the k leading pairs match ml-matrix, including repeated, clustered and zero eigenvalues', () => {
  const rng = new Rng(12);
  const cases: { name: string; S: Float64Array; n: number; k: number }[] = [];
  for (const [n, k] of [[1, 1], [5, 5], [40, 12], [120, 30]] as const) {
    const A = randArray(rng, n * n);
    const S = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) S[i * n + j] = A[i * n + j]! + A[j * n + i]!;
    cases.push({ name: `random ${n}`, S, n, k });
  }
  // Q diag(λ) Qᵀ with a triple eigenvalue, a cluster 1e-10 wide, then a flat tail; rank 3 of 30
  // (k beyond the rank reaches the zero eigenvalues); the zero matrix.
  const n = 50;
  const Q = symEig(plainMatMul(randArray(rng, n * n), randArray(rng, n * n), n, n, n, false, true).map((v, i, a) => v + a[(i % n) * n + Math.floor(i / n)]!), n).vectors;
  const lam = Array.from({ length: n }, (_, i) => (i < 3 ? 9 : i < 8 ? 4 + 1e-10 * i : 1 + 0.01 * i));
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) L[i * n + j] = Q[i * n + j]! * lam[j]!;
  cases.push({ name: 'clustered', S: plainMatMul(L, Q, n, n, n, false, true), n, k: 20 });
  const U = randArray(rng, 30 * 3);
  cases.push({ name: 'rank 3', S: plainMatMul(U, U, 30, 3, 30, false, true), n: 30, k: 10 });
  cases.push({ name: 'zero', S: new Float64Array(16), n: 4, k: 2 });
  for (const { name, S, n, k } of cases) {
    const M = new Matrix(Array.from({ length: n }, (_, i) => Array.from(S.subarray(i * n, (i + 1) * n))));
    const ref = new EigenvalueDecomposition(M, { assumeSymmetric: true }).realEigenvalues.sort((a, b) => b - a);
    const top = symTopEig(S, n, k);
    const scale = Math.max(1, ...ref.map(Math.abs));
    for (let j = 0; j < k; j++) {
      assert.ok(Math.abs(top.values[j]! - ref[j]!) <= 1e-12 * scale, `${name} λ_${j}: ${top.values[j]} vs ${ref[j]}`);
      // Residual ‖S v − λ v‖ and orthonormality: within a cluster the vectors are any basis of
      // its invariant subspace, so they are checked by what they do, not entry by entry.
      for (let i = 0; i < n; i++) {
        let sv = 0;
        for (let c = 0; c < n; c++) sv += S[i * n + c]! * top.vectors[c * k + j]!;
        assert.ok(Math.abs(sv - top.values[j]! * top.vectors[i * k + j]!) <= 1e-10 * scale, `${name} residual of v_${j}`);
      }
      for (let c = 0; c <= j; c++) {
        let dotp = 0;
        for (let i = 0; i < n; i++) dotp += top.vectors[i * k + j]! * top.vectors[i * k + c]!;
        assert.ok(Math.abs(dotp - (c === j ? 1 : 0)) <= 1e-10, `${name} v_${j}·v_${c} = ${dotp}`);
      }
    }
  }
});

test('centredRows: all rows or a selection, against the means computed by hand', () => {
  const X = Float32Array.from([1, 10, 3, 30, 5, 50, 100, 1000]);
  const all = centredRows(X, 4, 2);
  assert.deepEqual(Array.from(all.mean), [27.25, 272.5]);
  assert.deepEqual(Array.from(all.centred.subarray(0, 2)), [1 - 27.25, 10 - 272.5]);
  const sel = centredRows(X, 4, 2, [2, 0]);
  assert.deepEqual(Array.from(sel.mean), [3, 30]);
  assert.deepEqual(Array.from(sel.centred), [2, 20, -2, -20]);
  assert.deepEqual(Array.from(centredRows(X, 4, 2, []).mean), [0, 0]);
});

test('pinvSym of a rank-deficient matrix equals the SVD pseudo-inverse and satisfies Moore–Penrose', () => {
  const rng = new Rng(6);
  const n = 7;
  const r = 3;
  const U = randArray(rng, n * r);
  const S = plainMatMul(U, U, n, r, n, false, true);
  const { pinv, rank } = pinvSym(S, n);
  assert.equal(rank, r);
  const ref = pseudoInverse(new Matrix(Array.from({ length: n }, (_, i) => Array.from(S.subarray(i * n, (i + 1) * n)))), 1e-10);
  assert.ok(relErr(pinv, ref.to1DArray()) < 1e-9, `rel err ${relErr(pinv, ref.to1DArray())}`);
  const SPS = plainMatMul(plainMatMul(S, pinv, n, n, n), S, n, n, n);
  assert.ok(relErr(SPS, S) < 1e-10);
  assert.ok(Math.abs(trace(plainMatMul(S, pinv, n, n, n), n) - r) < 1e-9);
  assert.equal(pinvSym(S, n, { maxRank: 2 }).rank, 2);
});

test('singularValues (via the smaller Gram) match ml-matrix SVD for tall and wide matrices', async () => {
  const rng = new Rng(7);
  for (const [n, d] of [
    [40, 6],
    [5, 30],
  ] as const) {
    const X = randArray(rng, n * d, 1, 3);
    const s = await singularValues(X, n, d);
    const ref = new SingularValueDecomposition(new Matrix(Array.from({ length: n }, (_, i) => Array.from(X.subarray(i * d, (i + 1) * d)))), { autoTranspose: true }).diagonal;
    assert.equal(s.length, Math.min(n, d));
    for (let i = 0; i < s.length; i++) assert.ok(Math.abs(s[i]! - ref[i]!) <= 1e-9 * ref[0]!, `${n}x${d} σ${i}: ${s[i]} vs ${ref[i]}`);
  }
});

test('Cholesky: factor, solve (with and without the transposed factor) and inverse match ml-matrix', () => {
  const rng = new Rng(11);
  const n = 37;
  const B = Matrix.from1DArray(n, n, Array.from({ length: n * n }, () => rng.normal()));
  const A = B.mmul(B.transpose()).add(Matrix.eye(n).mul(0.1));
  const L = Float64Array.from(A.to1DArray());
  assert.ok(choleskyInPlace(L, n));
  for (let i = 0; i < n; i++) L.fill(0, i * n + i + 1, (i + 1) * n);
  const Lm = Matrix.from1DArray(n, n, Array.from(L));
  assert.ok(Lm.mmul(Lm.transpose()).sub(A).norm('frobenius') < 1e-10 * A.norm('frobenius'));
  const b = Float64Array.from({ length: n }, () => rng.normal());
  const want = pseudoInverse(A).mmul(Matrix.columnVector(Array.from(b))).to1DArray();
  const Lt = Float64Array.from(Lm.transpose().to1DArray());
  for (const x of [choleskySolve(L, n, Float64Array.from(b)), choleskySolve(L, n, Float64Array.from(b), Lt)]) {
    for (let i = 0; i < n; i++) assert.ok(Math.abs(x[i]! - want[i]!) < 1e-8 * (1 + Math.abs(want[i]!)), `x[${i}] ${x[i]} vs ${want[i]}`);
  }
  const inv = choleskyInverse(L, n);
  const eye = A.mmul(Matrix.from1DArray(n, n, Array.from(inv)));
  assert.ok(eye.sub(Matrix.eye(n)).norm('frobenius') < 1e-8);
  const logdet = new EigenvalueDecomposition(A).realEigenvalues.reduce((s, v) => s + Math.log(v), 0);
  assert.ok(Math.abs(logDetFromCholesky(L, n) - logdet) < 1e-9 * Math.abs(logdet));
  // Not positive definite: refused, not factored into NaN.
  const S = Float64Array.from(A.to1DArray());
  S[0] = -1;
  assert.equal(choleskyInPlace(S, n), false);
});
