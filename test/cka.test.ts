import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ckaGram, ckaFromGrams, ckaMatrix } from '../src/metrics/cka.js';
import { Rng } from '../src/util/rng.js';
import { randn } from './helpers/random.js';

/** Plain d×d-form linear CKA in float64, straight from the formula. */
function directCka(X: Float32Array, Y: Float32Array, n: number, d1: number, d2: number): number {
  const centre = (A: Float32Array, d: number) => {
    const out = Float64Array.from(A);
    for (let j = 0; j < d; j++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += out[i * d + j]!;
      m /= n;
      for (let i = 0; i < n; i++) out[i * d + j]! -= m;
    }
    return out;
  };
  const x = centre(X, d1);
  const y = centre(Y, d2);
  const prod = (A: Float64Array, da: number, B: Float64Array, db: number) => {
    let s = 0;
    for (let p = 0; p < da; p++)
      for (let q = 0; q < db; q++) {
        let v = 0;
        for (let i = 0; i < n; i++) v += A[i * da + p]! * B[i * db + q]!;
        s += v * v;
      }
    return s;
  };
  return prod(y, d2, x, d1) / (Math.sqrt(prod(x, d1, x, d1)) * Math.sqrt(prod(y, d2, y, d2)));
}

/** Plain unbiased HSIC (Song et al. 2012) from explicit Grams. */
function directDebiased(X: Float32Array, Y: Float32Array, n: number, d1: number, d2: number): number {
  const gram = (A: Float32Array, d: number) => {
    const K = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        let s = 0;
        for (let k = 0; k < d; k++) s += A[i * d + k]! * A[j * d + k]!;
        K[i * n + j] = s;
      }
    return K;
  };
  const hsic = (K: Float64Array, L: Float64Array) => {
    let tr = 0, sK = 0, sL = 0, mid = 0;
    const kl1 = new Float64Array(n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        tr += K[i * n + j]! * L[j * n + i]!;
        sK += K[i * n + j]!;
        sL += L[i * n + j]!;
      }
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) kl1[i]! += K[i * n + j]! * L[j * n + k]!;
    for (let i = 0; i < n; i++) mid += kl1[i]!;
    return (tr + (sK * sL) / ((n - 1) * (n - 2)) - (2 / (n - 2)) * mid) / (n * (n - 3));
  };
  const K = gram(X, d1);
  const L = gram(Y, d2);
  return hsic(K, L) / Math.sqrt(hsic(K, K) * hsic(L, L));
}

test('linear CKA equals the direct d×d formula', async () => {
  const rng = new Rng(1);
  const n = 60;
  const X = randn(rng, n * 7);
  const Y = Float32Array.from({ length: n * 5 }, (_, i) => X[(Math.floor(i / 5)) * 7 + (i % 5)]! + 0.5 * rng.normal());
  const got = ckaFromGrams(await ckaGram(X, n, 7), await ckaGram(Y, n, 5));
  const want = directCka(X, Y, n, 7, 5);
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
  assert.ok(got > 0.2 && got < 1);
});

test('CKA(X, XQ·s) = 1 for an orthogonal Q and a scale s, and CKA(X, X) = 1', async () => {
  const rng = new Rng(2);
  const n = 80, d = 6;
  const X = randn(rng, n * d);
  // Orthogonal Q from Gram–Schmidt of a random matrix.
  const Q: number[][] = [];
  for (let c = 0; c < d; c++) {
    const v = Array.from({ length: d }, () => rng.normal());
    for (const q of Q) {
      const dp = v.reduce((s, x, i) => s + x * q[i]!, 0);
      for (let i = 0; i < d; i++) v[i]! -= dp * q[i]!;
    }
    const nv = Math.hypot(...v);
    Q.push(v.map((x) => x / nv));
  }
  const s = 3.7;
  const Y = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) {
    let v = 0;
    for (let k = 0; k < d; k++) v += X[i * d + k]! * Q[c]![k]!;
    Y[i * d + c] = s * v;
  }
  const m = await ckaMatrix([{ X, n, d }, { X: Y, n, d }]);
  assert.ok(Math.abs(m[0]![1]! - 1) < 1e-5, String(m[0]![1]));
  assert.ok(Math.abs(m[0]![0]! - 1) < 1e-9);
  const db = await ckaMatrix([{ X, n, d }, { X: Y, n, d }], 'debiased');
  assert.ok(Math.abs(db[0]![1]! - 1) < 1e-5, String(db[0]![1]));
});

test('debiased CKA equals a direct unbiased-HSIC computation and is near 0 for independent data', async () => {
  const rng = new Rng(3);
  const n = 24;
  const X = randn(rng, n * 4);
  const Y = randn(rng, n * 3);
  const got = ckaFromGrams(await ckaGram(X, n, 4, 'debiased'), await ckaGram(Y, n, 3, 'debiased'));
  const want = directDebiased(X, Y, n, 4, 3);
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
  const big = 400;
  const A = randn(rng, big * 20);
  const B = randn(rng, big * 20);
  const lin = (await ckaMatrix([{ X: A, n: big, d: 20 }, { X: B, n: big, d: 20 }]))[0]![1]!;
  const deb = (await ckaMatrix([{ X: A, n: big, d: 20 }, { X: B, n: big, d: 20 }], 'debiased'))[0]![1]!;
  assert.ok(Math.abs(deb) < Math.abs(lin), `debiased ${deb} should be closer to 0 than linear ${lin}`);
  assert.ok(Math.abs(deb) < 0.02);
});
