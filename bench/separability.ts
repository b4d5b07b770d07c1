/**
 * Benchmark of the MD-LSM κ matrix (SCIENCE.md §3.1): 10 classes × 500 rows at width 512,
 * random but class-structured (class means in a 32-dimensional subspace plus isotropic noise),
 * so the guard reduces by PCA to 250 and every pair has a non-trivial κ. Times the whole
 * mdlsm() call with its defaults (κ matrix, held-out κ, 3-permutation baseline) and, separately,
 * the in-sample matrix alone. Prints one JSON line.
 *
 *   node --import tsx bench/separability.ts
 */
import { mdlsm } from '../src/metrics/separability/index.js';
import type { SampleMatrix } from '../src/stats/sample-buffer.js';
import { Rng } from '../src/util/rng.js';

function classStructured(K: number, perClass: number, d: number, seed: number): SampleMatrix {
  const rng = new Rng(seed);
  const sub = 32;
  const basis = Float64Array.from({ length: sub * d }, () => rng.normal() / Math.sqrt(d));
  const means = Array.from({ length: K }, () => {
    const c = Array.from({ length: sub }, () => rng.normal() * 0.3);
    const mu = new Float64Array(d);
    for (let s = 0; s < sub; s++) for (let j = 0; j < d; j++) mu[j]! += c[s]! * basis[s * d + j]!;
    return mu;
  });
  const n = K * perClass;
  const X = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % K;
    labels[i] = k;
    for (let j = 0; j < d; j++) X[i * d + j] = means[k]![j]! + rng.normal();
  }
  return { X, n, d, K, labels, ids: Int32Array.from({ length: n }, (_, i) => i) };
}

const samples = classStructured(10, 500, 512, 7);
// CPU time beside wall time: on a shared machine the wall clock also measures the neighbours.
const c0 = process.cpuUsage();
const t0 = performance.now();
const full = await mdlsm(samples, { seed: 0 });
const ms = performance.now() - t0;
const c1 = process.cpuUsage(c0);
const t1 = performance.now();
const matrixOnly = await mdlsm(samples, { seed: 0, permutations: 0, trainFraction: 0 });
const matrixMs = performance.now() - t1;
console.log(
  JSON.stringify({
    name: 'mdlsm 10x500 d=512',
    ms: Math.round(ms),
    cpuMs: Math.round((c1.user + c1.system) / 1000),
    matrixOnlyMs: Math.round(matrixMs),
    reduction: full.reduction.reduction,
    mean: full.mean,
    worst: full.worst?.kappa ?? null,
    heldOutMean: full.heldOut?.mean ?? null,
    nullMean: full.null?.mean ?? null,
    sameMatrix: matrixOnly.mean === full.mean,
  }),
);
