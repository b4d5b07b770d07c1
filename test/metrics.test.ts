import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Matrix, pseudoInverse, SingularValueDecomposition } from 'ml-matrix';
import { RuntimeFailure } from '../src/errors.js';
import { accuracy, argmaxRows } from '../src/metrics/accuracy.js';
import { bootstrapCi, bootstrapCis, quantileSorted, rescaledInterval, resampleRows } from '../src/metrics/bootstrap.js';
import { computeLayerMetrics } from '../src/pipeline/layer-metrics.js';
import { cdnv, nc1, nc2, nc3, nc4 } from '../src/metrics/collapse.js';
import { compression, compressionFromSamples, discrimination, discriminationFromSamples } from '../src/metrics/geometry.js';
import { rank, rankFromSingularValues } from '../src/metrics/rank.js';
import { ClassStats } from '../src/stats/accumulator.js';
import { momentsNoScatter } from '../src/stats/moments.js';
import type { SampleMatrix } from '../src/stats/sample-buffer.js';
import { Rng } from '../src/util/rng.js';

function matrixOf(rows: number[][], labels: number[], K: number): SampleMatrix {
  const d = rows[0]!.length;
  return {
    X: Float32Array.from(rows.flat()),
    n: rows.length,
    d,
    K,
    labels: Int32Array.from(labels),
    ids: Int32Array.from(rows.keys()),
  };
}

async function statsOf(m: SampleMatrix, opts: ConstructorParameters<typeof ClassStats>[2] = { momentPrecision: 'float64' }): Promise<ClassStats> {
  const s = new ClassStats(m.K, m.d, opts);
  await s.update(m.X, m.n, m.labels);
  return s;
}

function rel(a: number, b: number): number {
  if (a === b) return 0;
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

function assertRel(a: number, b: number, tol: number, what: string): void {
  assert.ok(rel(a, b) <= tol, `${what}: ${a} vs ${b} (rel ${rel(a, b)})`);
}

// ---------------------------------------------------------------------------------------------
// An independent, plain implementation of every definition (explicit d×d matrices, ml-matrix).

function directMetrics(m: SampleMatrix, W?: Float64Array) {
  const { X, n, d, K, labels } = m;
  const counts = new Array<number>(K).fill(0);
  const mu = Array.from({ length: K }, () => new Array<number>(d).fill(0));
  const muG = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) {
    counts[labels[i]!]!++;
    for (let j = 0; j < d; j++) {
      mu[labels[i]!]![j]! += X[i * d + j]!;
      muG[j]! += X[i * d + j]! / n;
    }
  }
  mu.forEach((v, k) => v.forEach((_, j) => (v[j]! /= counts[k]!)));
  const SW = Matrix.zeros(d, d);
  for (let i = 0; i < n; i++) {
    const dev = Array.from({ length: d }, (_, j) => X[i * d + j]! - mu[labels[i]!]![j]!);
    SW.add(Matrix.columnVector(dev).mmul(Matrix.rowVector(dev)).div(n));
  }
  const SB = Matrix.zeros(d, d);
  const mt = mu.map((v) => v.map((x, j) => x - muG[j]!));
  for (const v of mt) SB.add(Matrix.columnVector(v).mmul(Matrix.rowVector(v)).div(K));
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const cos = (a: number[], b: number[]) => a.reduce((s, x, j) => s + x * b[j]!, 0) / (norm(a) * norm(b));
  let maxCos = -Infinity;
  for (let k = 0; k < K; k++) for (let l = 0; l < K; l++) if (k !== l) maxCos = Math.max(maxCos, cos(mu[k]!, mu[l]!));
  const nc1v = SW.mmul(pseudoInverse(SB, 1e-10)).trace() / K;
  const norms = mt.map(norm);
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const std = (a: number[]) => Math.sqrt(mean(a.map((x) => (x - mean(a)) ** 2)));
  const pairCos: number[] = [];
  for (let k = 0; k < K; k++) for (let l = k + 1; l < K; l++) pairCos.push(cos(mt[k]!, mt[l]!));
  const orderedCos: number[] = [];
  for (let k = 0; k < K; k++) for (let l = 0; l < K; l++) if (k !== l) orderedCos.push(cos(mt[k]!, mt[l]!));
  let nc3v = NaN;
  if (W) {
    const wf = Math.sqrt(W.reduce((s, x) => s + x * x, 0));
    const mf = Math.sqrt(mt.flat().reduce((s, x) => s + x * x, 0));
    nc3v = 0;
    for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) nc3v += (W[k * d + j]! / wf - mt[k]![j]! / mf) ** 2;
  }
  const nearest = (i: number) => {
    let best = Infinity;
    let arg = -1;
    for (let k = 0; k < K; k++) {
      const dist = mu[k]!.reduce((s, x, j) => s + (X[i * d + j]! - x) ** 2, 0);
      if (dist < best) {
        best = dist;
        arg = k;
      }
    }
    return arg;
  };
  const variance = mu.map((v, k) => {
    let s = 0;
    for (let i = 0; i < n; i++) if (labels[i] === k) for (let j = 0; j < d; j++) s += (X[i * d + j]! - v[j]!) ** 2;
    return s / counts[k]!;
  });
  const cd: number[] = [];
  for (let k = 0; k < K; k++) {
    for (let l = k + 1; l < K; l++) {
      const dist2 = mu[k]!.reduce((s, x, j) => s + (x - mu[l]![j]!) ** 2, 0);
      cd.push((variance[k]! + variance[l]!) / (2 * dist2));
    }
  }
  return {
    C: SW.trace() / SB.trace(),
    D: 1 - maxCos,
    nc1: nc1v,
    equinorm: std(norms) / mean(norms),
    equiangularity: std(pairCos),
    maxAngle: mean(orderedCos.map((c) => Math.abs(c + 1 / (K - 1)))),
    nc3: nc3v,
    nearest,
    cdnv: mean(cd),
  };
}

function randomData(seed: number, n: number, d: number, K: number, offset: number, spread = 1): SampleMatrix {
  const rng = new Rng(seed);
  const centres = Array.from({ length: K }, () => Array.from({ length: d }, () => 2 * rng.normal()));
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = i < K ? i : rng.int(K) < K / 2 ? 0 : rng.int(K);
    labels.push(k);
    rows.push(centres[k]!.map((c, j) => offset + c + spread * (1 + (j % 3)) * rng.normal()));
  }
  return matrixOf(rows, labels, K);
}

// ---------------------------------------------------------------------------------------------
// Hand-built cases with known answers

test('two classes on orthogonal axes: C = 1/2, D = 1, NC1 = 1/8, NC2 = 0, CDNV = 1/8', async () => {
  // Class 0 at (2,0) spread along e2, class 1 at (0,2) spread along e1: tr Σ_W = 1, tr Σ_B = 2,
  // Σ_W = I/2, Σ_B = 2uuᵀ with u = (1,−1)/√2, so tr(Σ_W Σ_B⁺)/K = (1/4)/2.
  const m = matrixOf(
    [
      [2, 1],
      [2, -1],
      [1, 2],
      [-1, 2],
    ],
    [0, 0, 1, 1],
    2,
  );
  const s = await statsOf(m);
  assertRel(compression(s).value, 0.5, 1e-12, 'C');
  assert.equal(discrimination(s).value, 1);
  assert.deepEqual(discrimination(s).detail?.closestPair, [0, 1]);
  assertRel((await nc1(s)).value, 1 / 8, 1e-12, 'NC1');
  const [eq, ang, maxAngle] = nc2(s);
  assert.ok(Math.abs(eq!.value) < 1e-12 && Math.abs(ang!.value) < 1e-12 && Math.abs(maxAngle!.value) < 1e-12);
  assertRel(cdnv(s).value, 1 / 8, 1e-12, 'CDNV');
  // NC3 with the classifier equal to the centred means is 0; with the opposite sign it is 4.
  assert.ok(Math.abs(nc3(s, Float64Array.from([1, -1, -1, 1])).value) < 1e-12);
  assertRel(nc3(s, Float64Array.from([-1, 1, 1, -1])).value, 4, 1e-12, 'NC3');
});

test('NC2 angles skip a class whose centred mean is 0 and name it', async () => {
  // Means (−1,0), (0,0), (1,0): the middle class sits on the global mean; the other two are
  // opposite (cos −1), so over the one defined pair equiangularity is 0 and max-angle |−1 + ½|.
  const m = matrixOf([[-1, 0.1], [-1, -0.1], [0, 0.1], [0, -0.1], [1, 0.1], [1, -0.1]], [0, 0, 1, 1, 2, 2], 3);
  const [, ang, maxAngle] = nc2(await statsOf(m));
  assert.ok(Math.abs(ang!.value) < 1e-12, `${ang!.value}`);
  assertRel(maxAngle!.value, 0.5, 1e-12, 'max-angle');
  assert.deepEqual(ang!.detail?.zeroNormClasses, [1]);
  assert.equal(ang!.detail?.pairs, 1);
});

test('collapsed classes: tr Σ_W = 0 gives C = 0, NC1 = 0, CDNV = 0', async () => {
  const m = matrixOf(
    [
      [5, 1, 0],
      [5, 1, 0],
      [0, 3, 1],
      [0, 3, 1],
      [1, 1, 4],
    ],
    [0, 0, 1, 1, 2],
    3,
  );
  for (const momentPrecision of ['float32', 'float64'] as const) {
    const s = await statsOf(m, { momentPrecision });
    assert.equal(s.withinTrace(), 0);
    assert.equal(compression(s).value, 0);
    assert.equal((await nc1(s)).value, 0);
    assert.equal(cdnv(s).value, 0);
  }
});

test('identical class means: D = 0, C = ∞, NC1 undefined', async () => {
  const m = matrixOf(
    [
      [1, 1],
      [3, 3],
      [3, 1],
      [1, 3],
    ],
    [0, 0, 1, 1],
    2,
  );
  const s = await statsOf(m);
  assert.ok(Math.abs(discrimination(s).value) < 1e-15);
  assert.equal(compression(s).value, Infinity);
  assert.ok(Number.isNaN((await nc1(s)).value));
  assert.equal(cdnv(s).value, Infinity);
});

test('discrimination uses uncentred means and the signed cosine; empty classes are left out', async () => {
  // Means (1,0), (−1,0.1), none, (0,1): cos(μ1,μ3) ≈ 0.0995 beats cos(μ0,μ3) = 0 and the negative cos(μ0,μ1).
  const m = matrixOf(
    [
      [1, 0],
      [-1, 0.1],
      [0, 1],
    ],
    [0, 1, 3],
    4,
  );
  const s = await statsOf(m);
  const D = discrimination(s);
  assert.ok(Math.abs(D.value - (1 - 0.1 / Math.hypot(1, 0.1))) < 1e-7, `${D.value}`);
  assert.deepEqual(D.detail?.closestPair, [1, 3]);
  assert.deepEqual(D.detail?.missingClasses, [2]);
  assert.equal(compression(s).detail?.K, 3);
});

// ---------------------------------------------------------------------------------------------
// Random data against the plain implementation

test('random data: every metric equals the explicit d×d computation within 1e-6', async () => {
  for (const [seed, n, d, K, offset] of [
    [21, 400, 12, 4, 0],
    [22, 300, 8, 5, 500],
    [23, 200, 3, 6, 2], // K − 1 > d: Σ_B has rank d
  ] as const) {
    const m = randomData(seed, n, d, K, offset);
    const rng = new Rng(seed + 100);
    const W = Float64Array.from({ length: K * d }, () => rng.normal());
    const ref = directMetrics(m, W);
    for (const momentPrecision of ['float64', 'float32'] as const) {
      const s = await statsOf(m, { momentPrecision });
      const what = `seed ${seed} ${momentPrecision}`;
      assertRel(compression(s).value, ref.C, 1e-9, `${what} C`);
      assertRel(discrimination(s).value, ref.D, 1e-9, `${what} D`);
      assertRel((await nc1(s)).value, ref.nc1, 1e-6, `${what} NC1`);
      const [eq, ang, maxAngle] = nc2(s);
      assertRel(eq!.value, ref.equinorm, 1e-9, `${what} equinorm`);
      assertRel(ang!.value, ref.equiangularity, 1e-9, `${what} equiangularity`);
      assertRel(maxAngle!.value, ref.maxAngle, 1e-9, `${what} max-angle`);
      assertRel(nc3(s, W).value, ref.nc3, 1e-9, `${what} NC3`);
      assertRel(cdnv(s).value, ref.cdnv, 1e-9, `${what} CDNV`);
    }
    // NC1 from the sample matrix, when the statistics are too wide to keep Σ_W.
    const narrow = await statsOf(m, { maxMomentDim: d - 1 });
    const fromSamples = await nc1(narrow, m);
    assert.equal(fromSamples.detail?.source, 'sample-buffer');
    assertRel(fromSamples.value, ref.nc1, 1e-6, `seed ${seed} NC1 from samples`);
    await assert.rejects(nc1(narrow), RuntimeFailure);
    // The sample-matrix helpers equal the statistics.
    assertRel(compressionFromSamples(m).value, ref.C, 1e-9, 'C from samples');
    assertRel(discriminationFromSamples(m).value, ref.D, 1e-9, 'D from samples');
  }
});

test('NC4 counts rows whose nearest class mean differs from the prediction', async () => {
  const m = randomData(31, 250, 6, 3, 40, 2.5);
  const ref = directMetrics(m);
  const nearest = Int32Array.from({ length: m.n }, (_, i) => ref.nearest(i));
  const s = await statsOf(m);
  assert.equal((await nc4(s, { ...m, predictions: nearest })).value, 0);
  // Predicting the label instead: mismatches are exactly the rows the class means misclassify.
  let expected = 0;
  for (let i = 0; i < m.n; i++) if (nearest[i] !== m.labels[i]) expected++;
  assert.ok(expected > 0, 'test data should have overlapping classes');
  const r = await nc4(s, m, m.labels);
  assert.equal(r.value, expected / m.n);
  await assert.rejects(nc4(s, m), /prediction/);
});

// ---------------------------------------------------------------------------------------------
// Ranks

function gaussianSubspace(seed: number, n: number, d: number, r: number, scales?: number[]): SampleMatrix {
  const rng = new Rng(seed);
  const B = Array.from({ length: r }, () => Array.from({ length: d }, () => rng.normal()));
  const offset = Array.from({ length: d }, () => 10 * rng.normal());
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const c = Array.from({ length: r }, (_, t) => (scales ? scales[t]! : 1) * rng.normal());
    rows.push(offset.map((o, j) => o + c.reduce((s, ct, t) => s + ct * B[t]![j]!, 0)));
  }
  return matrixOf(rows, new Array<number>(n).fill(0), 1);
}

test('numerical rank of data on an exact r-dim subspace is r (≤ r when unevenly spread)', async () => {
  const [nr] = await rank(gaussianSubspace(41, 800, 20, 5));
  assert.equal(nr!.value, 5);
  const [nrUneven] = await rank(gaussianSubspace(42, 800, 20, 5, [10, 5, 1, 0.01, 0.01]));
  assert.ok(nrUneven!.value <= 5 && nrUneven!.value >= 2, `${nrUneven!.value}`);
});

test('effective rank of isotropic data is close to d', async () => {
  const rng = new Rng(43);
  const iso = matrixOf(
    Array.from({ length: 4000 }, () => Array.from({ length: 20 }, (_, j) => j + rng.normal())),
    new Array<number>(4000).fill(0),
    1,
  );
  const [, er] = await rank(iso);
  assert.ok(er!.value > 0.98 * 20 && er!.value <= 20, `${er!.value}`);
});

test('rank at an exact tie: 100 equal singular values hold 95% in exactly 95; effective rank is never above the count', async () => {
  // X = [I; −I]: centred already, every singular value √2.
  const d = 100;
  const X = new Float32Array(2 * d * d);
  for (let i = 0; i < d; i++) {
    X[i * d + i] = 1;
    X[(d + i) * d + i] = -1;
  }
  const [nr, er] = await rank({ X, n: 2 * d, d });
  assert.equal(nr!.value, 95);
  assert.ok(er!.value <= d && Math.abs(er!.value - d) < 1e-9, `effective rank ${er!.value}`);
  const flat = rankFromSingularValues(new Float64Array(60).fill(0.1));
  assert.equal(flat.numericalRank, 57);
  assert.ok(flat.effectiveRank <= 60, `${flat.effectiveRank}`);
});

test('numerical and effective rank equal a direct SVD computation', async () => {
  for (const [n, d] of [
    [300, 15],
    [12, 40],
  ] as const) {
    const m = gaussianSubspace(44 + n, n, d, Math.min(n, d), Array.from({ length: Math.min(n, d) }, (_, t) => 0.8 ** t));
    const mean = new Array<number>(d).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += m.X[i * d + j]! / n;
    const C = new Matrix(Array.from({ length: n }, (_, i) => Array.from({ length: d }, (_, j) => m.X[i * d + j]! - mean[j]!)));
    const s = new SingularValueDecomposition(C, { autoTranspose: true }).diagonal;
    const total = s.reduce((a, v) => a + v, 0);
    let r = 0;
    let acc = 0;
    while (acc < 0.95 * total) acc += s[r++]!;
    const H = -s.filter((v) => v > 1e-9 * s[0]!).reduce((a, v) => a + (v / total) * Math.log(v / total), 0);
    const [nr, er] = await rank(m);
    assert.equal(nr!.value, r);
    assertRel(er!.value, Math.exp(H), 1e-6, `effective rank ${n}×${d}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Bootstrap and accuracy

test('quantileSorted interpolates linearly; stratified resampling keeps class sizes', () => {
  const v = Float64Array.from([1, 2, 3, 4, 5]);
  assert.equal(quantileSorted(v, 0), 1);
  assert.equal(quantileSorted(v, 0.5), 3);
  assert.equal(quantileSorted(v, 0.125), 1.5);
  assert.equal(quantileSorted(v, 1), 5);
  const labels = Int32Array.from([0, 1, 1, 2, 2, 2, 0]);
  const idx = resampleRows({ n: 7, K: 3, labels }, new Rng(1), true);
  const counts = [0, 0, 0];
  for (const i of idx) counts[labels[i]!]!++;
  assert.deepEqual(counts, [2, 2, 3]);
});

test('bootstrap CI of a mean has the textbook width and is reproducible for a seed', async () => {
  const rng = new Rng(51);
  const n = 400;
  const m = matrixOf(
    Array.from({ length: n }, () => [rng.normal()]),
    new Array<number>(n).fill(0),
    1,
  );
  const mean = (s: SampleMatrix) => s.X.reduce((a, v) => a + v, 0) / s.n;
  const r1 = await bootstrapCi(mean, m, { seed: 3, reps: 400 });
  const r2 = await bootstrapCi(mean, m, { seed: 3, reps: 400 });
  assert.deepEqual(r1, r2);
  assert.ok(r1.ci);
  // Normal theory: ±1.96/√400 ≈ ±0.098, width ≈ 0.196.
  const width = r1.ci[1] - r1.ci[0];
  assert.ok(width > 0.16 && width < 0.23, `width ${width}`);
  assert.ok(r1.ci[0] < r1.estimate && r1.estimate < r1.ci[1]);
  assert.equal(r1.replicates.length + r1.failed, 400);
});

test('bootstrap of compression from a sample matrix brackets the estimate', async () => {
  const m = randomData(52, 300, 5, 3, 1);
  const r = await bootstrapCi((s) => compressionFromSamples(s).value, m, { seed: 9, reps: 100 });
  assertRel(r.estimate, compression(momentsNoScatter(m.X, m.n, m.d, m.labels, m.K)).value, 1e-12, 'estimate');
  assert.ok(r.ci);
  assert.ok(r.ci[0] < r.estimate && r.estimate < r.ci[1], `${r.ci} vs ${r.estimate}`);
  assert.equal(r.failed, 0);
});

test('several statistics over shared resamples equal separate bootstraps with the same seed', async () => {
  const m = randomData(53, 200, 4, 3, 1);
  const comp = (s: SampleMatrix) => compressionFromSamples(s).value;
  const disc = (s: SampleMatrix) => discriminationFromSamples(s).value;
  const [a, b] = await bootstrapCis((s) => [comp(s), disc(s)], m, { seed: 4, reps: 60 });
  assert.deepEqual(a, await bootstrapCi(comp, m, { seed: 4, reps: 60 }));
  assert.deepEqual(b, await bootstrapCi(disc, m, { seed: 4, reps: 60 }));
});

test('rescaled interval: the basic interval when the buffer is everything; from a subsample it still covers the population C', async () => {
  // m = N: [2θ̂ − q_hi, 2θ̂ − q_lo].
  const m0 = randomData(55, 120, 4, 3, 1);
  const [b0] = await bootstrapCis((s) => [compressionFromSamples(s).value], m0, { seed: 2, reps: 80, level: 0.9 });
  const ci0 = rescaledInterval(b0!.estimate, b0!, m0.n, m0.n)!;
  assertRel(ci0[0], 2 * b0!.estimate - b0!.ci![1], 1e-12, 'basic lower');
  assertRel(ci0[1], 2 * b0!.estimate - b0!.ci![0], 1e-12, 'basic upper');
  // Coverage: K = 4 Gaussian classes, means 2·e_k in d = 8, unit noise, so the population
  // C = tr Σ_W / tr Σ_B = 8 / (0.75·2²). C comes from 250 rows per class, the bootstrap from 25 of
  // them. The percentile interval of the subsample describes C at 25 per class (biased, wider)
  // and misses the population C most of the time; the rescaled interval should hold it at close
  // to its level.
  const K = 4, d = 8, Nk = 250, mk = 25, trials = 60;
  const Ctrue = d / (0.75 * 4);
  const rng = new Rng(1);
  let rescaled = 0;
  let percentile = 0;
  for (let t = 0; t < trials; t++) {
    const N = Nk * K;
    const X = new Float32Array(N * d);
    const y = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      y[i] = i % K;
      for (let j = 0; j < d; j++) X[i * d + j] = rng.normal() + (j === y[i] ? 2 : 0);
    }
    const C = compression(momentsNoScatter(X, N, d, y, K)).value;
    const m = mk * K;
    const buf = { X: X.subarray(0, m * d), n: m, d, K, labels: y.subarray(0, m), ids: new Int32Array(m) };
    const [b] = await bootstrapCis((s) => [compressionFromSamples(s).value], buf, { seed: t, reps: 200, level: 0.9 });
    const ci = rescaledInterval(C, b!, m, N)!;
    if (ci[0] <= Ctrue && Ctrue <= ci[1]) rescaled++;
    if (b!.ci![0] <= Ctrue && Ctrue <= b!.ci![1]) percentile++;
  }
  assert.ok(rescaled / trials >= 0.75, `rescaled coverage ${rescaled / trials} at level 0.9`);
  assert.ok(percentile / trials < 0.5, `the subsample's percentile interval covered ${percentile / trials}: the test no longer tells the two apart`);
});

test('a statistic undefined on most resamples gets no interval, and the layer metric says why', async () => {
  // A dead layer: every feature 0, so tr(Σ_B) = 0 and compression is NaN on every resample.
  const m = randomData(54, 60, 3, 3, 1);
  m.X.fill(0);
  const r = await bootstrapCi((s) => compressionFromSamples(s).value, m, { seed: 1, reps: 40 });
  assert.equal(r.ci, null);
  assert.equal(r.failed, 40);
  const stats = new ClassStats(m.K, m.d);
  await stats.update(m.X, m.n, m.labels);
  const results = await computeLayerMetrics(stats, m, { metrics: ['geometry'], seed: 0, ci: 0.9, bootstrapReps: 20, hasPredictions: false });
  const c = results.find((x) => x.name === 'compression')!;
  assert.equal(c.ci, undefined);
  assert.match(String(c.detail?.ciNote), /no interval: only 0 of 20/);
});

test('accuracy is the argmax hit rate; NaN outputs are a RuntimeFailure naming the sample', () => {
  const logits = Float32Array.from([0.1, 0.9, 0.0, 2, 1, 0, 0, 0, 5, 1, 1, 0]);
  assert.deepEqual(Array.from(argmaxRows(logits, 4, 3)), [1, 0, 2, 0]);
  const r = accuracy(logits, 4, 3, Int32Array.from([1, 0, 1, 0]));
  assert.equal(r.value, 0.75);
  assert.throws(() => accuracy(Float32Array.from([0, NaN, 1, 1]), 2, 2, Int32Array.from([0, 1])), (e: unknown) => e instanceof RuntimeFailure && /sample 0/.test(e.message));
});
