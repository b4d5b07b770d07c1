/**
 * The neural-collapse family of docs/metrics/collapse.md (Papyan, Han, Donoho 2020; CDNV from Galanti et
 * al.). μ̃_k = μ_k − μ_G with μ_G the mean over all samples; K is the number of classes present.
 *
 * NC1 without a d×d inverse. Let M̃ = [μ̃_1 … μ̃_K] (d×K) and G = M̃ᵀM̃ (K×K). With the thin SVD
 * M̃ = U S Vᵀ: Σ_B = (1/K) U S² Uᵀ, so Σ_B⁺ = K U S⁻² Uᵀ, and since G⁺ = V S⁻² Vᵀ,
 * M̃ G⁺ G⁺ M̃ᵀ = U S Vᵀ V S⁻⁴ Vᵀ V S Uᵀ = U S⁻² Uᵀ. Hence Σ_B⁺ = K · M̃ (G⁺)² M̃ᵀ and
 *   NC1 = tr(Σ_W Σ_B⁺)/K = tr((G⁺)² M̃ᵀ Σ_W M̃) = Σ_i v_iᵀ A v_i / λ_i²,   A = M̃ᵀ Σ_W M̃,
 * over the eigenpairs (λ_i, v_i) of G that the pseudo-inverse keeps: only K×K matrices, and
 * Σ_W enters only through A. Σ n_k μ̃_k = 0 makes rank G ≤ K−1, so at most K−1 are kept, and
 * eigenvalues below a relative tolerance count as zero (as any pinv does).
 */
import { RuntimeFailure } from '../errors.js';
import { dot, keptEigenvalues, matMul, norm2, symEig, transpose } from '../linalg/dense.js';
import { gram, matmul } from '../linalg/ort-ops.js';
import {
  asMoments,
  centredMeans,
  classVariance,
  momentsNoScatter,
  presentClasses,
  totalCount,
  type ClassMoments,
  type MomentsSource,
} from '../stats/moments.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import type { MeanPassResult } from '../stats/mean-pass.js';
import { DEFINITIONS, type MetricBasis, type MetricResult } from './types.js';

export interface Nc1Options {
  /** Relative tolerance on the eigenvalues of G = M̃ᵀM̃ (default: see PinvOptions in dense.ts). */
  rtol?: number;
  /** The second streaming pass of this layer (all N rows), used when no d×d scatter was kept. */
  meanPass?: MeanPassResult;
}

export interface Nc4Options {
  /** The second streaming pass of this layer: NC4 over all N rows instead of the buffer's. */
  meanPass?: MeanPassResult;
}

/** NC1 from centred-mean rows R = M̃ᵀ (K×d) and A = R Σ_W Rᵀ. */
function nc1Core(R: Float64Array, K: number, d: number, A: Float64Array, rtol?: number) {
  const G = matMul(R, transpose(R, K, d), K, d, K);
  const eig = symEig(G, K);
  const kept = keptEigenvalues(eig.values, K, { maxRank: K - 1, ...(rtol === undefined ? {} : { rtol }) });
  let value = 0;
  for (const i of kept) {
    const v = new Float64Array(K);
    for (let r = 0; r < K; r++) v[r] = eig.vectors[r * K + i]!;
    let q = 0;
    for (let r = 0; r < K; r++) q += v[r]! * dot(A, v, K, r * K, 0);
    const lam = eig.values[i]!;
    value += q / (lam * lam);
  }
  return { value, rank: kept.length, eigenvalues: Array.from(eig.values) };
}

/**
 * NC1, exact over all N images whenever the pipeline gave it the means: from the within-class
 * scatter when the statistics kept it (d ≤ the moment limit), else from the second streaming pass
 * (`meanPass`: R Σ_W Rᵀ accumulated over all N once the means were known; see
 * stats/mean-pass.ts), which `detail.source` and `detail.passes` record. Only without either does
 * it fall back to the sample matrix (means and Σ_W from the buffer rows), and then `basis` says it
 * is sampled. NaN when fewer than two classes are present or when the class means coincide.
 */
export async function nc1(src: MomentsSource, samples?: SampleMatrix, opts: Nc1Options = {}): Promise<MetricResult> {
  let m = asMoments(src);
  let source: 'statistics' | 'second-pass' | 'sample-buffer';
  let A: Float64Array;
  let R: Float64Array;
  let K: number;
  let basis: MetricBasis | undefined;
  if (m.scatter) {
    source = 'statistics';
    const cm = centredMeans(m);
    R = cm.rows;
    K = cm.classes.length;
    const N = totalCount(m);
    // A = R Σ_W Rᵀ: the d×d·K product goes through onnxruntime in float64.
    const T = await matmul(m.scatter, transpose(R, K, m.d), m.d, m.d, K);
    A = matMul(R, T, K, m.d, K).map((v) => v / N);
  } else if (opts.meanPass) {
    source = 'second-pass';
    const cm = centredMeans(m);
    R = cm.rows;
    K = cm.classes.length;
    const N = totalCount(m);
    if (opts.meanPass.n !== N || opts.meanPass.classes.join() !== cm.classes.join()) {
      throw new RuntimeFailure(`NC1: the second pass saw ${opts.meanPass.n} rows of classes [${opts.meanPass.classes.join(',')}], the statistics ${N} of [${cm.classes.join(',')}]`);
    }
    A = opts.meanPass.withinOnMeans;
  } else {
    if (!samples) {
      throw new RuntimeFailure(
        `NC1 needs the within-class covariance: the layer is wider (d=${m.d}) than the moment limit and neither a second pass nor a sample buffer was given`,
        'run the second pass (stats/mean-pass.ts), raise maxMomentDim, or pass the sample buffer',
      );
    }
    source = 'sample-buffer';
    m = momentsNoScatter(samples.X, samples.n, samples.d, samples.labels, samples.K);
    const cm = centredMeans(m);
    R = cm.rows;
    K = cm.classes.length;
    const { n, d } = samples;
    // Z = (H − μ_label) Rᵀ (n×K), then A = ZᵀZ/n: Σ_W is never formed.
    const D = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      const o = samples.labels[i]! * d;
      for (let j = 0; j < d; j++) D[i * d + j] = samples.X[i * d + j]! - m.means[o + j]!;
    }
    const Z = await matmul(D, transpose(R, K, d), n, d, K);
    A = (await gram(Z, n, K)).map((v) => v / n);
    basis = { n, sampled: true, note: `Σ_W and the class means from the ${n} buffered rows` };
  }
  const detail: Record<string, unknown> = { source, K, N: totalCount(m), d: m.d };
  if (source === 'second-pass') {
    detail.passes = 2;
    detail.note = `exact over all ${totalCount(m)} images: the layer (d=${m.d}) is wider than the moment limit, so Σ_W restricted to the span of the centred class means was accumulated in a second streaming pass`;
  }
  if (source === 'sample-buffer') detail.note = 'Σ_W and the class means estimated from the sample buffer (no d×d moment kept for this layer)';
  const withBasis = (r: MetricResult): MetricResult => (basis ? { ...r, basis } : r);
  if (K < 2) return withBasis({ name: 'nc1', value: NaN, definition: DEFINITIONS.nc1, detail });
  const core = nc1Core(R, K, m.d, A, opts.rtol);
  let value = core.value;
  if (core.rank === 0) {
    // pinv(0) = 0 would give NC1 = 0, the value of perfect collapse: say "undefined" instead.
    value = NaN;
    detail.note = 'class means coincide (Σ_B = 0): NC1 undefined';
  }
  detail.rankSigmaB = core.rank;
  return withBasis({ name: 'nc1', value, definition: DEFINITIONS.nc1, detail });
}

function popStd(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  return Math.sqrt(xs.reduce((s, v) => s + (v - mean) * (v - mean), 0) / xs.length);
}

function centredCosines(m: ClassMoments) {
  const { classes, rows } = centredMeans(m);
  const K = classes.length;
  const norms = classes.map((_, r) => norm2(rows, m.d, r * m.d));
  const cos: number[][] = Array.from({ length: K }, () => new Array<number>(K).fill(NaN));
  for (let a = 0; a < K; a++) {
    for (let b = a; b < K; b++) {
      let s = 0;
      if (norms[a]! > 0 && norms[b]! > 0) {
        for (let j = 0; j < m.d; j++) s += (rows[a * m.d + j]! / norms[a]!) * (rows[b * m.d + j]! / norms[b]!);
      } else {
        s = NaN;
      }
      cos[a]![b] = s;
      cos[b]![a] = s;
    }
  }
  return { classes, rows, norms, cos, K };
}

/** NC2: equinorm, equiangularity and max-angle of the centred class means. */
export function nc2(src: MomentsSource): MetricResult[] {
  const m = asMoments(src);
  const { norms, cos, K, classes } = centredCosines(m);
  const meanNorm = norms.reduce((s, v) => s + v, 0) / K;
  // A class whose mean sits exactly on the global mean has no direction: its cosines are
  // undefined, so the angle measures skip its pairs and name it (as discrimination does).
  const zeroNorm = classes.filter((_, a) => !(norms[a]! > 0));
  const offDiag: number[] = [];
  for (let a = 0; a < K; a++) for (let b = a + 1; b < K; b++) if (norms[a]! > 0 && norms[b]! > 0) offDiag.push(cos[a]![b]!);
  const simplex = -1 / (K - 1);
  const detail = { K, classes, centredMeanNorms: norms };
  const angleDetail = { K, pairs: offDiag.length, ...(zeroNorm.length ? { zeroNormClasses: zeroNorm } : {}) };
  return [
    { name: 'nc2_equinorm', value: K > 0 ? popStd(norms) / meanNorm : NaN, definition: DEFINITIONS.nc2Equinorm, detail },
    { name: 'nc2_equiangularity', value: offDiag.length ? popStd(offDiag) : NaN, definition: DEFINITIONS.nc2Equiangularity, detail: angleDetail },
    {
      name: 'nc2_max_angle',
      value: offDiag.length ? offDiag.reduce((s, c) => s + Math.abs(c - simplex), 0) / offDiag.length : NaN,
      definition: DEFINITIONS.nc2MaxAngle,
      detail: { ...angleDetail, simplexCosine: simplex },
    },
  ];
}

/**
 * NC3 self-duality with the classifier W (K×d, row k = class k's weights). Rows of classes
 * absent from the statistics are dropped from W as well.
 */
export function nc3(src: MomentsSource, W: Float32Array | Float64Array): MetricResult {
  const m = asMoments(src);
  if (W.length !== m.K * m.d) throw new RuntimeFailure(`NC3: classifier has ${W.length} weights, expected K×d = ${m.K}×${m.d}`);
  const { classes, rows } = centredMeans(m);
  const Wp = new Float64Array(classes.length * m.d);
  classes.forEach((k, r) => {
    for (let j = 0; j < m.d; j++) Wp[r * m.d + j] = W[k * m.d + j]!;
  });
  const wn = norm2(Wp);
  const mn = norm2(rows);
  let s = 0;
  for (let i = 0; i < Wp.length; i++) {
    const v = Wp[i]! / wn - rows[i]! / mn;
    s += v * v;
  }
  return { name: 'nc3', value: wn > 0 && mn > 0 ? s : NaN, definition: DEFINITIONS.nc3, detail: { K: classes.length, classes } };
}

/**
 * NC4: fraction of images whose nearest class mean (means from `src`, Euclidean) differs from the
 * model's prediction. Over all N when the second pass counted it (`opts.meanPass`); otherwise over
 * the sample rows (`predictions`, default the matrix's own), and `basis` says so.
 */
export async function nc4(src: MomentsSource, samples: SampleMatrix, predictions?: Int32Array, opts: Nc4Options = {}): Promise<MetricResult> {
  const m = asMoments(src);
  const pass = opts.meanPass;
  if (pass && pass.nc4Rows > 0) {
    const N = totalCount(m);
    if (pass.nc4Rows !== N) throw new RuntimeFailure(`NC4: the second pass compared ${pass.nc4Rows} predictions, the statistics hold ${N} rows`);
    return {
      name: 'nc4',
      value: pass.nc4Mismatches / N,
      definition: DEFINITIONS.nc4,
      detail: { n: N, mismatches: pass.nc4Mismatches, K: pass.classes.length, source: 'second-pass', passes: 2 },
    };
  }
  const preds = predictions ?? samples.predictions;
  if (!preds) throw new RuntimeFailure('NC4 needs the model prediction of every sample row; none were recorded');
  if (preds.length !== samples.n) throw new RuntimeFailure(`NC4: ${preds.length} predictions for ${samples.n} rows`);
  if (samples.d !== m.d) throw new RuntimeFailure(`NC4: samples have width ${samples.d}, statistics ${m.d}`);
  const { classes, rows } = centredMeans(m);
  const K = classes.length;
  const { n, d } = samples;
  // Work relative to μ_G so that a large common offset does not swamp the differences.
  const g = new Float64Array(d);
  const N = totalCount(m);
  for (const k of classes) for (let j = 0; j < d; j++) g[j]! += (m.counts[k]! / N) * m.means[k * d + j]!;
  const Hc = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) Hc[i * d + j] = samples.X[i * d + j]! - g[j]!;
  // argmin_k ‖h̃ − μ̃_k‖² = argmin_k (‖μ̃_k‖² − 2 h̃·μ̃_k); the n×d×K product goes through onnxruntime.
  const P = await matmul(Hc, transpose(rows, K, d), n, d, K);
  const sq = classes.map((_, r) => dot(rows, rows, d, r * d, r * d));
  let mismatch = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let arg = -1;
    for (let r = 0; r < K; r++) {
      const v = sq[r]! - 2 * P[i * K + r]!;
      if (v < best) {
        best = v;
        arg = classes[r]!;
      }
    }
    if (arg !== preds[i]) mismatch++;
  }
  return {
    name: 'nc4',
    value: n > 0 ? mismatch / n : NaN,
    definition: DEFINITIONS.nc4,
    detail: { n, mismatches: mismatch, K, source: 'sample-buffer' },
    ...(n < N ? { basis: { n, sampled: true, note: `the ${n} buffered rows of ${N}` } } : {}),
  };
}

/** Mean CDNV over pairs of present classes; the worst (largest) pair in detail. */
export function cdnv(src: MomentsSource): MetricResult {
  const m = asMoments(src);
  const classes = presentClasses(m);
  const { d } = m;
  let sum = 0;
  let pairs = 0;
  let worst: { pair: [number, number]; value: number } | null = null;
  for (let a = 0; a < classes.length; a++) {
    for (let b = a + 1; b < classes.length; b++) {
      const k = classes[a]!;
      const l = classes[b]!;
      let dist2 = 0;
      for (let j = 0; j < d; j++) {
        const v = m.means[k * d + j]! - m.means[l * d + j]!;
        dist2 += v * v;
      }
      const vk = classVariance(m, k);
      const vl = classVariance(m, l);
      const c = dist2 > 0 ? (vk + vl) / (2 * dist2) : vk + vl > 0 ? Infinity : NaN;
      sum += c;
      pairs++;
      if (!worst || c > worst.value || Number.isNaN(c)) worst = { pair: [k, l], value: c };
    }
  }
  return { name: 'cdnv', value: pairs ? sum / pairs : NaN, definition: DEFINITIONS.cdnv, detail: { pairs, worst, K: classes.length } };
}
