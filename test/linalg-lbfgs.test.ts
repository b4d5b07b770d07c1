/**
 * linalg/kernels.ts against plain loops, and linalg/lbfgs.ts (both drivers) on problems with a
 * known minimiser: a random well-conditioned quadratic (solved directly by Gaussian elimination
 * here) and the Rosenbrock function (minimum at (1, 1)).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { axpy, dot, infNorm, norm } from '../src/linalg/kernels.js';
import { lbfgs, lbfgsSync } from '../src/linalg/lbfgs.js';
import { Rng } from '../src/util/rng.js';

test('dot, axpy, norm, infNorm match plain loops (offsets and every remainder length)', () => {
  const rng = new Rng(5);
  const a = Float64Array.from({ length: 40 }, () => rng.normal());
  const b = Float64Array.from({ length: 40 }, () => rng.normal());
  for (let n = 0; n <= 13; n++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[3 + i]! * b[7 + i]!;
    assert.ok(Math.abs(dot(a, b, n, 3, 7) - s) <= 1e-12 * (1 + Math.abs(s)), `n = ${n}`);
  }
  const y = Float64Array.from(b);
  axpy(-0.5, a, y, 10, 2, 5);
  for (let i = 0; i < 40; i++) assert.equal(y[i], i >= 5 && i < 15 ? b[i]! - 0.5 * a[i - 3]! : b[i]);
  assert.ok(Math.abs(norm(a) - Math.sqrt(a.reduce((t, v) => t + v * v, 0))) < 1e-12);
  assert.equal(infNorm(a), Math.max(...Array.from(a, Math.abs)));
});

/** Solves A x = c by Gaussian elimination with partial pivoting (the independent answer). */
function solve(A: number[][], c: number[]): number[] {
  const n = c.length;
  const M = A.map((r, i) => [...r, c[i]!]);
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(M[i]![k]!) > Math.abs(M[p]![k]!)) p = i;
    [M[k], M[p]] = [M[p]!, M[k]!];
    for (let i = k + 1; i < n; i++) {
      const f = M[i]![k]! / M[k]![k]!;
      for (let j = k; j <= n; j++) M[i]![j]! -= f * M[k]![j]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = M[i]![n]!;
    for (let j = i + 1; j < n; j++) s -= M[i]![j]! * x[j]!;
    x[i] = s / M[i]![i]!;
  }
  return x;
}

test('L-BFGS reaches the minimiser of a quadratic ½xᵀAx − cᵀx (A = BᵀB + I), sync and async alike', async () => {
  const n = 12;
  const rng = new Rng(9);
  const B = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.normal()));
  const A = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => B.reduce((s, r) => s + r[i]! * r[j]!, 0) + (i === j ? 1 : 0)));
  const c = Array.from({ length: n }, () => rng.normal());
  const f = (x: Float64Array) => {
    const grad = new Float64Array(n);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      let Ax = 0;
      for (let j = 0; j < n; j++) Ax += A[i]![j]! * x[j]!;
      grad[i] = Ax - c[i]!;
      loss += 0.5 * x[i]! * Ax - c[i]! * x[i]!;
    }
    return { loss, grad };
  };
  const want = solve(A, c);
  const opts = { maxIter: 500, gtol: 1e-10, memory: 10 };
  const s = lbfgsSync(f, new Float64Array(n), opts);
  const a = await lbfgs({ evaluate: async (x) => f(x) }, new Float64Array(n), opts);
  assert.equal(s.status, 'converged');
  for (let i = 0; i < n; i++) assert.ok(Math.abs(s.x[i]! - want[i]!) < 1e-8, `x[${i}] ${s.x[i]} vs ${want[i]}`);
  assert.deepEqual(Array.from(a.x), Array.from(s.x));
  assert.equal(a.iterations, s.iterations);
});

test('L-BFGS on Rosenbrock from (−1.2, 1) ends at (1, 1); a non-finite objective is a RuntimeFailure with the given message', () => {
  const rosen = (x: Float64Array) => {
    const [u, v] = [x[0]!, x[1]!];
    return { loss: (1 - u) ** 2 + 100 * (v - u * u) ** 2, grad: Float64Array.of(-2 * (1 - u) - 400 * u * (v - u * u), 200 * (v - u * u)) };
  };
  const r = lbfgsSync(rosen, Float64Array.of(-1.2, 1), { maxIter: 1000, gtol: 1e-9, memory: 5 });
  assert.ok(Math.abs(r.x[0]! - 1) < 1e-6 && Math.abs(r.x[1]! - 1) < 1e-6, `ended at ${Array.from(r.x)}`);
  assert.throws(() => lbfgsSync(() => ({ loss: NaN, grad: Float64Array.of(1) }), Float64Array.of(0), { maxIter: 5, gtol: 0, memory: 3, nonFiniteMessage: 'boom' }), /boom/);
});
