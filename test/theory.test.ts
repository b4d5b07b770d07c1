/**
 * Random-layer theory (SCIENCE.md §4). Every expected number comes from a computation written
 * plainly here or from another solver: ml-matrix SVDs and eigenvalues, explicit matrix
 * products, the HiGHS cutting-plane solver against the barrier solver, the LP of
 * metrics/separability against the theory's own LP, sampled readouts through onnxruntime
 * against semidefinite certificates. The published-shape checks reproduce the phase-transition
 * facts of SCIENCE §4 at modest trial counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EigenvalueDecomposition, Matrix, SingularValueDecomposition } from 'ml-matrix';
import { UsageError } from '../src/errors.js';
import { lpSeparable } from '../src/metrics/separability/index.js';
import { Rng } from '../src/util/rng.js';
import {
  activationFn,
  barrierSeparable,
  blockMatrix,
  cdfAt,
  classEnergyRanks,
  cuttingPlaneSeparable,
  energyRank,
  erf,
  exactSeparable,
  gaussianLayerWeights,
  halfCrossing,
  logLogFit,
  phaseTransition,
  predictedThreshold,
  principalAngles,
  projectedWeights,
  randomLayer,
  randomLayerBaseline,
  randomSubspace,
  sampleLp,
  sampleSeparable,
  subspacePairAtAngle,
  unionOfSubspaces,
  uosBases,
  type Activation,
  type QuadBlock,
} from '../src/theory/index.js';

// ---------------------------------------------------------------------------------------------
// Plain helpers

/** d×m row-major → ml-matrix. */
const mat = (A: ArrayLike<number>, rows: number, cols: number) => new Matrix(Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => A[i * cols + j]!)));

/** Principal angles by ml-matrix: arccos of the singular values of U1ᵀU2 (fine away from 0). */
function mlAngles(U1: Float64Array, U2: Float64Array, d: number, r: number): number[] {
  const M = mat(U1, d, r).transpose().mmul(mat(U2, d, r));
  return new SingularValueDecomposition(M).diagonal.map((s) => Math.acos(Math.min(1, s))).sort((a, b) => a - b);
}

function minEigML(M: Float64Array, r: number): number {
  return Math.min(...new EigenvalueDecomposition(mat(M, r, r)).realEigenvalues);
}

const degrees = (rad: number) => (rad * 180) / Math.PI;

// ---------------------------------------------------------------------------------------------
// Union of subspaces

test('θ-pair: every principal angle equals θ to 1e-9, by our solver and by ml-matrix', () => {
  for (const [d, r, deg] of [[12, 3, 30], [40, 6, 10], [20, 5, 90], [9, 4, 0], [30, 2, 60]] as const) {
    const theta = (deg * Math.PI) / 180;
    const [U1, U2] = subspacePairAtAngle(d, r, theta, new Rng(d + r));
    const ours = principalAngles(U1, U2, d, r, r);
    for (const a of ours) assert.ok(Math.abs(a - theta) < 1e-9, `ours ${a} vs ${theta}`);
    if (deg >= 5) for (const a of mlAngles(U1, U2, d, r)) assert.ok(Math.abs(a - theta) < 1e-9, `ml-matrix ${a} vs ${theta}`);
    // Both bases orthonormal (UᵀU = I), computed plainly.
    for (const U of [U1, U2]) {
      const G = mat(U, d, r).transpose().mmul(mat(U, d, r));
      for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) assert.ok(Math.abs(G.get(i, j) - (i === j ? 1 : 0)) < 1e-12);
    }
  }
});

test('principal angles stay accurate for tiny angles (sine branch) and for random pairs', () => {
  const theta = 1e-7;
  const [U1, U2] = subspacePairAtAngle(10, 3, theta, new Rng(5));
  for (const a of principalAngles(U1, U2, 10, 3, 3)) assert.ok(Math.abs(a - theta) < 1e-15, `${a}`);
  const rng = new Rng(9);
  const A = randomSubspace(15, 4, rng);
  const B = randomSubspace(15, 4, rng);
  const ours = Array.from(principalAngles(A, B, 15, 4, 4));
  const ref = mlAngles(A, B, 15, 4);
  ours.forEach((a, i) => assert.ok(Math.abs(a - ref[i]!) < 1e-9, `${a} vs ${ref[i]}`));
  // Unequal dimensions: min(r1, r2) angles; a subspace containing the other has all angles 0.
  const C = randomSubspace(12, 5, new Rng(3));
  const sub = new Float64Array(12 * 2);
  for (let i = 0; i < 12; i++) for (let j = 0; j < 2; j++) sub[i * 2 + j] = C[i * 5 + j]!;
  const inner = principalAngles(sub, C, 12, 2, 5);
  assert.equal(inner.length, 2);
  for (const a of inner) assert.ok(a < 1e-7);
});

test('UoS samples lie in their subspace; noise moves them off by ≈ σ√(d−r); seeds reproduce', () => {
  const u = unionOfSubspaces({ d: 30, r: 4, K: 3, n: 200, seed: 11 });
  assert.equal(u.n, 600);
  assert.deepEqual([...new Set(u.labels)], [0, 1, 2]);
  let worst = 0;
  for (let i = 0; i < u.n; i++) {
    const U = mat(u.bases[u.labels[i]!]!, 30, 4);
    const x = new Matrix([Array.from(u.X.subarray(i * 30, (i + 1) * 30))]).transpose();
    const res = x.clone().sub(U.mmul(U.transpose().mmul(x)));
    worst = Math.max(worst, res.norm());
  }
  assert.ok(worst < 1e-12, `residual ${worst}`);
  // Angles reported for every pair.
  assert.deepEqual(u.angles.map((p) => [p.k, p.l]), [[0, 1], [0, 2], [1, 2]]);
  const again = unionOfSubspaces({ d: 30, r: 4, K: 3, n: 200, seed: 11 });
  assert.deepEqual(again.X, u.X);
  assert.notDeepEqual(unionOfSubspaces({ d: 30, r: 4, K: 3, n: 200, seed: 12 }).X, u.X);

  const sigma = 0.1;
  const noisy = unionOfSubspaces({ d: 30, r: 4, K: 2, n: 500, seed: 2, noise: sigma });
  let ss = 0;
  for (let i = 0; i < noisy.n; i++) {
    const U = mat(noisy.bases[noisy.labels[i]!]!, 30, 4);
    const x = new Matrix([Array.from(noisy.X.subarray(i * 30, (i + 1) * 30))]).transpose();
    ss += x.clone().sub(U.mmul(U.transpose().mmul(x))).norm() ** 2;
  }
  const rms = Math.sqrt(ss / noisy.n);
  assert.ok(Math.abs(rms - sigma * Math.sqrt(26)) < 0.05 * sigma * Math.sqrt(26), `rms off-subspace ${rms}`);
  assert.throws(() => unionOfSubspaces({ d: 5, r: 3, n: 10, seed: 0, angle: 0.3 }), UsageError);
});

// ---------------------------------------------------------------------------------------------
// Random layers

test('random layer: activations match hand values and a plain computation; widths nest', async () => {
  assert.ok(Math.abs(erf(0.5) - 0.5204998778130465) < 1e-15);
  assert.ok(Math.abs(erf(-2) + 0.9953222650189527) < 1e-15);
  const gelu = activationFn('gelu');
  assert.ok(Math.abs(gelu(1) - 0.8413447460685429) < 1e-15);
  assert.ok(Math.abs(gelu(-1) + 0.15865525393145707) < 1e-15);
  assert.equal(activationFn('leaky-relu')(-2), -0.02);
  assert.ok(Math.abs(activationFn('elu')(-1) - (Math.exp(-1) - 1)) < 1e-16);
  assert.equal(activationFn('quadratic')(-3), 9);

  const n = 7;
  const d = 5;
  const D = 9;
  const rng = new Rng(4);
  const X = Float64Array.from({ length: n * d }, () => rng.normal());
  for (const activation of ['quadratic', 'relu', 'leaky-relu', 'elu', 'gelu', 'tanh'] as Activation[]) {
    const layer = randomLayer({ D, d, activation, seed: 3 });
    const F = await layer.apply(X, n);
    const f = activationFn(activation);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < D; j++) {
        let z = 0;
        for (let k = 0; k < d; k++) z += layer.W[j * d + k]! * X[i * d + k]!;
        assert.ok(Math.abs(F[i * D + j]! - f(z)) < 1e-12 * (1 + Math.abs(f(z))), `${activation} (${i},${j})`);
      }
    }
  }
  // The layer of width 4 is the first 4 rows of the layer of width 9.
  const narrow = randomLayer({ D: 4, d, activation: 'relu', seed: 3 });
  const wide = randomLayer({ D: 9, d, activation: 'relu', seed: 3 });
  assert.deepEqual(narrow.W, wide.W.subarray(0, 4 * d));
  // Float32 input gives float32 output close to the float64 one.
  const F32 = await wide.apply(Float32Array.from(X), n);
  const F64 = await wide.apply(X, n);
  assert.ok(F32 instanceof Float32Array);
  for (let i = 0; i < F32.length; i++) assert.ok(Math.abs(F32[i]! - F64[i]!) < 1e-5);
});

// ---------------------------------------------------------------------------------------------
// Exact test for the quadratic layer

function pairBlocks(d: number, r: number, D: number, seed: number, angle?: number): { blocks: QuadBlock[]; W: Float64Array; bases: Float64Array[] } {
  const { bases } = uosBases({ d, r, seed, ...(angle !== undefined ? { angle } : {}) });
  const W = gaussianLayerWeights(D, d, seed + 1000);
  const G = bases.map((U) => projectedWeights(W, D, d, U, r));
  return { blocks: [{ G: G[0]!, r, sign: 1 }, { G: G[1]!, r, sign: -1 }], W, bases };
}

test('A_k(a) equals U_kᵀWᵀdiag(a)WU_k by explicit products', () => {
  const d = 8;
  const r = 3;
  const D = 6;
  const { blocks, W, bases } = pairBlocks(d, r, D, 1);
  const a = [0.3, -1, 0.5, 0.25, -0.7, 1];
  const ref = mat(bases[0]!, d, r).transpose().mmul(mat(W, D, d).transpose()).mmul(Matrix.diag(a)).mmul(mat(W, D, d)).mmul(mat(bases[0]!, d, r));
  const ours = blockMatrix(blocks[0]!, a, D);
  for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) assert.ok(Math.abs(ours[i * r + j]! - ref.get(i, j)) < 1e-10);
  // The negative block is −A_2(a).
  const neg = blockMatrix(blocks[1]!, a, D);
  const ref2 = mat(bases[1]!, d, r).transpose().mmul(mat(W, D, d).transpose()).mmul(Matrix.diag(a)).mmul(mat(W, D, d)).mmul(mat(bases[1]!, d, r));
  for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) assert.ok(Math.abs(neg[i * r + j]! + ref2.get(i, j)) < 1e-10);
});

test('exact test by hand: r = 1 needs two units; identical subspaces never separate', async () => {
  // r = 1: A_k(a) = Σ a_i (w_iᵀu_k)². One unit gives both classes the same sign; two generic units do not.
  for (let seed = 0; seed < 5; seed++) {
    const one = pairBlocks(6, 1, 2, seed);
    assert.equal((barrierSeparable(one.blocks, 1)).separable, false);
    const two = barrierSeparable(one.blocks, 2);
    assert.equal(two.separable, true);
    // The certificate's two numbers, checked by hand: a·α > 0 and a·β < 0.
    const a = two.certificate!;
    const alpha = one.blocks[0]!.G;
    const beta = one.blocks[1]!.G;
    assert.ok(a[0]! * alpha[0]! ** 2 + a[1]! * alpha[1]! ** 2 > 0);
    assert.ok(a[0]! * beta[0]! ** 2 + a[1]! * beta[1]! ** 2 < 0);
  }
  // θ = 0: the same subspace twice; A_1 = A_2 cannot be both ≻ 0 and ≺ 0, whatever the width.
  const same = pairBlocks(10, 3, 20, 7, 0);
  const res = barrierSeparable(same.blocks, 20);
  assert.equal(res.separable, false);
  const viaBases = await exactSeparable({ bases: same.bases, r: 3, d: 10, W: same.W, D: 20 });
  assert.equal(viaBases.separable, false);
  assert.equal(viaBases.problems[0]!.proof, 'subspaces intersect');
});

test('barrier and cutting-plane solvers agree; certificates hold on sampled points through onnxruntime', async () => {
  let sepSeen = 0;
  let insepSeen = 0;
  for (const [r, Ds] of [[2, [3, 4, 5]], [3, [7, 8, 9]], [4, [12, 14, 16]], [5, [17, 20]]] as const) {
    for (let seed = 0; seed < 3; seed++) {
      const Dmax = Math.max(...Ds);
      const { blocks, bases } = pairBlocks(12, r, Dmax, 100 * r + seed);
      for (const D of Ds) {
        const bar = barrierSeparable(blocks, D);
        const cp = await cuttingPlaneSeparable(blocks, D);
        assert.notEqual(bar.separable, null);
        assert.equal(bar.separable, cp.separable, `r=${r} D=${D} seed=${seed}: barrier ${bar.status}/${bar.proof}, cutting planes ${cp.status}/${cp.proof}`);
        if (!bar.separable) {
          insepSeen++;
          continue;
        }
        sepSeen++;
        const a = bar.certificate!;
        // Independent eigenvalues (ml-matrix) of both blocks.
        assert.ok(minEigML(blockMatrix(blocks[0]!, a, D), r) > 0);
        assert.ok(minEigML(blockMatrix(blocks[1]!, a, D), r) > 0);
        // The readout aᵀ(Wx)² on random points of each subspace, through the layer itself (onnxruntime).
        const layer = randomLayer({ D: Dmax, d: 12, activation: 'quadratic', seed: 100 * r + seed + 1000 });
        const m = 100;
        const crng = new Rng(seed + 77);
        const X = new Float64Array(2 * m * 12);
        for (let i = 0; i < 2 * m; i++) {
          const U = bases[i < m ? 0 : 1]!;
          const c = Array.from({ length: r }, () => crng.normal());
          for (let j = 0; j < 12; j++) for (let p = 0; p < r; p++) X[i * 12 + j]! += U[j * r + p]! * c[p]!;
        }
        const F = await layer.apply(X, 2 * m);
        for (let i = 0; i < 2 * m; i++) {
          let s = 0;
          for (let j = 0; j < D; j++) s += a[j]! * F[i * Dmax + j]!;
          assert.ok(i < m ? s > 0 : s < 0, `readout sign at point ${i}`);
        }
      }
    }
  }
  assert.ok(sepSeen >= 5 && insepSeen >= 5, `both verdicts exercised (${sepSeen} separable, ${insepSeen} not)`);
});

test('K = 3 one-vs-all: verdict is the conjunction, certificates satisfy every block', async () => {
  const d = 20;
  const r = 2;
  const { bases } = uosBases({ d, r, K: 3, seed: 4 });
  const D = 30;
  const W = gaussianLayerWeights(D, d, 8);
  for (const width of [6, 12, 30]) {
    const res = await exactSeparable({ bases, r, d, W, D: width });
    assert.equal(res.problems.length, 3);
    const each = res.problems.map((p) => p.separable);
    assert.equal(res.separable, each.every((v) => v === true));
    res.problems.forEach((p, k) => {
      if (!p.separable) return;
      bases.forEach((U, j) => {
        const A = blockMatrix({ G: projectedWeights(W, width, d, U, r), r, sign: j === k ? 1 : -1 }, p.certificate!, width);
        assert.ok(minEigML(A, r) > 0, `class ${k} certificate, block ${j}`);
      });
    });
  }
  // Wide enough, all three classes separate.
  assert.equal((await exactSeparable({ bases, r, d, W, D: 30 })).separable, true);
});

// ---------------------------------------------------------------------------------------------
// Sample LP test

test('sample LP: agrees with metrics/separability lpSeparable; refuses samples below Cover capacity', async () => {
  const rng = new Rng(21);
  for (let trial = 0; trial < 6; trial++) {
    const D = 4;
    const m = 30;
    const gap = trial % 2 === 0 ? 3 : 0;
    const A = Float64Array.from({ length: m * D }, (_, i) => rng.normal() + (i % D === 0 ? gap : 0));
    const B = Float64Array.from({ length: m * D }, (_, i) => rng.normal() - (i % D === 0 ? gap : 0));
    const X = new Float64Array(2 * m * D);
    X.set(A);
    X.set(B, m * D);
    const labels = Int32Array.from({ length: 2 * m }, (_, i) => (i < m ? 0 : 1));
    const ours = await sampleSeparable({ X, n: 2 * m, d: D, labels, K: 2 });
    const theirs = await lpSeparable(A, B, D, { margin: false });
    assert.equal(ours.separable, theirs.separable, `trial ${trial}`);
  }
  // XOR in the plane is not linearly separable; four points of it are below capacity 2(D+1) = 6.
  const xor = Float64Array.from([1, 1, -1, -1, 1, -1, -1, 1]);
  await assert.rejects(sampleSeparable({ X: xor, n: 4, d: 2, labels: Int32Array.from([0, 0, 1, 1]), K: 2 }), UsageError);
  const below = await sampleSeparable({ X: xor, n: 4, d: 2, labels: Int32Array.from([0, 0, 1, 1]), K: 2 }, { allowBelowCapacity: true });
  assert.equal(below.separable, false);
  assert.equal(below.belowCapacity, true);
  assert.match(below.note!, /Cover/);
  // One persistent model serves every width. Columns x₁, x₂, x₁x₂ with labels by x₁x₂: the first
  // two columns alone are XOR (inseparable), all three separate; widths can go back and forth.
  const lifted = Float64Array.from([1, 1, 1, -1, -1, 1, 1, -1, -1, -1, 1, -1]);
  const lp = await sampleLp(lifted, 4, 3, [1, 1, -1, -1]);
  try {
    assert.equal(lp.solve(2).separable, false);
    assert.equal(lp.solve(3).separable, true);
    assert.equal(lp.solve(2).separable, false);
    assert.ok(lp.solve(3).minSlack > 0);
  } finally {
    lp.dispose();
  }
});

test('exact quadratic test and sample LP agree on small cases (r = 2, d = 6, N ≫ 2D)', async () => {
  const d = 6;
  const r = 2;
  const Dmax = 8;
  let agree = 0;
  let total = 0;
  for (let seed = 0; seed < 6; seed++) {
    const u = unionOfSubspaces({ d, r, n: 200, seed });
    const layer = randomLayer({ D: Dmax, d, activation: 'quadratic', seed: seed + 50 });
    const F = await layer.apply(u.X, u.n);
    const lp = await sampleLp(F, u.n, Dmax, Int8Array.from(u.labels, (l) => (l === 0 ? 1 : -1)));
    try {
      for (let D = 2; D <= Dmax; D++) {
        const exact = await exactSeparable({ bases: u.bases, r, d, W: layer.W, D });
        const sample = lp.solve(D);
        assert.ok(u.n > 2 * (D + 1) * 10);
        total++;
        if (exact.separable === sample.separable) agree++;
      }
    } finally {
      lp.dispose();
    }
  }
  assert.equal(agree, total, `${agree}/${total} agree`);
});

// ---------------------------------------------------------------------------------------------
// Phase transitions: the published shape

test('threshold helpers: half crossing, CDF, log-log fit by hand', () => {
  assert.deepEqual(halfCrossing([10, 20, 30], [0, 0.25, 0.75]), { dStar: 25 });
  assert.equal(halfCrossing([10, 20], [0.6, 1]).dStar, null);
  assert.equal(halfCrossing([10, 20], [0, 0.4]).dStar, null);
  assert.deepEqual(cdfAt([3, 5, null, 4], [2, 3, 4, 5, 9]), [0, 0.25, 0.5, 0.75, 0.75]);
  const fit = logLogFit([1, 2, 4, 8], [3, 12, 48, 192])!;
  assert.ok(Math.abs(fit.slope - 2) < 1e-12);
  assert.ok(Math.abs(Math.exp(fit.intercept) - 3) < 1e-12);
  assert.ok(Math.abs(fit.r2 - 1) < 1e-12);
});

test('quadratic layer, d = 40, 10 trials: D* within [r(r+1)/2, r(r+1)], always separable at r(r+1), slope 1.5–2.2', async () => {
  const rs = [2, 3, 4, 5, 6, 7, 8, 9, 10];
  const res = await phaseTransition({ vary: 'intrinsic', values: rs, widths: Array.from({ length: 110 }, (_, i) => i + 1), d: 40, activation: 'quadratic', trials: 10, seed: 0 });
  const table = res.columns.map((c) => `r=${c.r} D*=${c.dStar?.toFixed(1)} (${((c.dStar ?? NaN) / c.featureDim).toFixed(2)}·r(r+1)/2)`);
  console.log(`theory D* (d=40, 10 trials): ${table.join(', ')}; slope ${res.fit?.slope.toFixed(3)}`);
  for (const c of res.columns) {
    assert.equal(c.undecided, 0);
    // Every trial is separable at r(r+1): its threshold exists and is at most r(r+1).
    for (const t of c.thresholds!) assert.ok(t !== null && t <= c.r * (c.r + 1), `r=${c.r}: threshold ${t}`);
    if ([4, 6, 8].includes(c.r)) {
      assert.ok(c.dStar !== null && c.dStar >= c.featureDim && c.sureWidth !== null && c.dStar <= c.sureWidth, `r=${c.r}: D* ${c.dStar}`);
    }
  }
  assert.ok(res.fit && res.fit.points === rs.length);
  assert.ok(res.fit.slope >= 1.5 && res.fit.slope <= 2.2, `slope ${res.fit.slope}`);
  // The grid follows from the thresholds: P at r(r+1) is 1 in every column.
  for (const c of res.columns) assert.equal(c.probability[c.sureWidth! - 1], 1);
  // Directly, without bisection: fresh draws tested at exactly D = r(r+1) all separate.
  for (const r of [2, 4, 6, 8]) {
    for (let seed = 0; seed < 10; seed++) {
      const D = r * (r + 1);
      const { bases } = uosBases({ d: 40, r, seed: 5000 + seed });
      const res1 = await exactSeparable({ bases, r, d: 40, W: gaussianLayerWeights(D, 40, 6000 + seed), D });
      assert.equal(res1.separable, true, `r=${r} seed=${seed}`);
    }
  }
});

test('bisection on nested widths gives the same grid as testing every cell', async () => {
  const common = { vary: 'intrinsic' as const, values: [2, 3], widths: [3, 4, 5, 6, 7, 8, 9, 10, 11, 12], d: 10, activation: 'quadratic' as const, trials: 4, seed: 3 };
  const fast = await phaseTransition(common);
  const slow = await phaseTransition({ ...common, exhaustive: true });
  assert.deepEqual(
    fast.columns.map((c) => c.probability),
    slow.columns.map((c) => c.probability),
  );
  // A column reproduces alone: seeds depend on the column value, not its position.
  const alone = await phaseTransition({ ...common, values: [3] });
  assert.deepEqual(alone.columns[0]!.thresholds, fast.columns[1]!.thresholds);
  // r(r+1) is a two-subspace guarantee: with three classes the result does not claim it.
  assert.deepEqual(fast.columns.map((c) => c.sureWidth), [6, 12]);
  const three = await phaseTransition({ ...common, values: [2], K: 3 });
  assert.equal(three.columns[0]!.sureWidth, null);
});

test('D* does not move with the ambient dimension: r = 6, d = 12, 40, 100 within 25%', async () => {
  const res = await phaseTransition({ vary: 'ambient', values: [12, 40, 100], widths: Array.from({ length: 42 }, (_, i) => i + 1), r: 6, activation: 'quadratic', trials: 20, seed: 0 });
  const ds = res.columns.map((c) => c.dStar!);
  console.log(`theory D*(r=6) at d = 12, 40, 100: ${ds.map((v) => v.toFixed(1)).join(', ')} (max/min ${res.dStarSpread?.toFixed(3)})`);
  assert.ok(ds.every((v) => v !== null));
  assert.ok(res.dStarSpread! <= 1.25, `spread ${res.dStarSpread}`);
});

test('smaller principal angles need more width (r = 4, d = 20)', async () => {
  const res = await phaseTransition({ vary: 'angle', values: [5, 90], widths: Array.from({ length: 20 }, (_, i) => i + 1), r: 4, d: 20, activation: 'quadratic', trials: 10, seed: 1 });
  const [small, right] = res.columns.map((c) => c.dStar!);
  assert.ok(small! > right!, `D*(5°) ${small} vs D*(90°) ${right}`);
});

test('ReLU needs more width than the quadratic layer (sample LP test, r = 3, d = 12)', async () => {
  const common = { vary: 'intrinsic' as const, values: [3], widths: Array.from({ length: 40 }, (_, i) => i + 1), d: 12, trials: 10, seed: 0, test: 'sample' as const };
  const quad = await phaseTransition({ ...common, activation: 'quadratic' });
  const relu = await phaseTransition({ ...common, activation: 'relu' });
  const q = quad.columns[0]!.dStar!;
  const rl = relu.columns[0]!.dStar!;
  console.log(`theory D*(r=3, d=12, sample LP, ${quad.samplesPerClass}/class): quadratic ${q.toFixed(1)}, relu ${rl.toFixed(1)} (ratio ${(rl / q).toFixed(2)})`);
  assert.ok(rl > q, `relu ${rl} vs quadratic ${q}`);
  // The quadratic sample test lands on the exact test's threshold range.
  assert.ok(q >= 6 && q <= 12, `quadratic sample D* ${q}`);
  await assert.rejects(phaseTransition({ ...common, activation: 'relu', samplesPerClass: 20 }), UsageError);
});

// ---------------------------------------------------------------------------------------------
// Ranks and the random-layer baseline

test('energy rank by hand and against ml-matrix SVD', async () => {
  // σ² = 9, 4, 1 (total 14): 90% needs 9 + 4 = 13 ≥ 12.6 → 2; 95% needs 13.3 → 3.
  assert.equal(energyRank([3, 2, 1], 0.9), 2);
  assert.equal(energyRank([3, 2, 1], 0.95), 3);
  assert.equal(energyRank([1, 2, 3], 0.5), 1);
  // Noise-free r-dim classes have rank r (equal-ish singular values: r − 1 hold < 95%).
  const u = unionOfSubspaces({ d: 25, r: 5, K: 2, n: 400, seed: 2 });
  const ranks = await classEnergyRanks(u);
  assert.deepEqual(ranks.map((c) => c.rank), [5, 5]);
  // Random data: ml-matrix SVD of the centred class matrix gives the same rank.
  const rng = new Rng(8);
  const n = 60;
  const d = 12;
  const X = Float64Array.from({ length: n * d }, (_, i) => rng.normal() * (1 + (i % d)) ** -1);
  const labels = new Int32Array(n);
  const [ours] = await classEnergyRanks({ X, n, d, labels, K: 1 });
  const M = mat(X, n, d);
  const centred = M.clone().subRowVector(M.mean('column'));
  const ref = energyRank(new SingularValueDecomposition(centred).diagonal);
  const refRaw = energyRank(new SingularValueDecomposition(M).diagonal);
  assert.equal(ours!.rank, ref);
  assert.equal(ours!.rankUncentred, refRaw);
});

test('random-layer baseline on UoS data: ranks r, angles of the true subspaces, features of the same layer', async () => {
  const d = 20;
  const r = 3;
  const u = unionOfSubspaces({ d, r, K: 3, n: 150, seed: 6 });
  const input = { X: Float32Array.from(u.X), n: u.n, d, labels: u.labels, K: 3 };
  const base = await randomLayerBaseline({ input, width: 24, activation: 'relu', seed: 2 });
  assert.deepEqual(base.perClassRank, [3, 3, 3]);
  assert.equal(base.rHat, 3);
  // The top-3 subspace of each (noise-free) class is its true subspace: the angles match the truth.
  for (const p of base.principalAngles.pairs) {
    const truth = Array.from(principalAngles(u.bases[p.k]!, u.bases[p.l]!, d, r, r), degrees);
    assert.ok(Math.abs(p.minDeg - Math.min(...truth)) < 1e-3, `pair ${p.k}-${p.l}: ${p.minDeg} vs ${Math.min(...truth)}`);
  }
  assert.equal(base.predictedThreshold, 2 * 1.25 * 6);
  assert.ok(Math.abs(base.widthRatio! - 24 / 15) < 1e-12);
  // The features are σ(Wx) of that same seeded layer, computed plainly.
  const layer = randomLayer({ D: 24, d, activation: 'relu', seed: 2 });
  assert.equal(base.randomFeatures.d, 24);
  for (const i of [0, 200, 449]) {
    for (let j = 0; j < 24; j++) {
      let z = 0;
      for (let k = 0; k < d; k++) z += layer.W[j * d + k]! * input.X[i * d + k]!;
      assert.ok(Math.abs(base.randomFeatures.X[i * 24 + j]! - Math.max(0, z)) < 1e-4);
    }
  }
  assert.equal(predictedThreshold(4, 'quadratic'), 12.5);
  assert.equal(predictedThreshold(4, 'tanh'), null);
  const tanh = await randomLayerBaseline({ input, width: 24, activation: 'tanh', seed: 2 });
  assert.equal(tanh.widthRatio, null);
});
