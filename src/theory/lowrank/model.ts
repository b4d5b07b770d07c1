/**
 * The low-rank analysis on real models (docs/theory.md): the model's classifier head (read by
 * runtime/classifier-head.ts) against B̃ of a reference model's posteriors over a dataset,
 * P(x) = 1/N over the chosen images. The dataset is opened and sampled as every command does
 * (pipeline/prepare.ts); one pass runs both models batch by batch.
 */
import type { Split } from '../../data/registry.js';
import { inferPreprocess } from '../../data/fit-input.js';
import { preprocess } from '../../data/preprocess.js';
import { batchesOf } from '../../data/sampling.js';
import { RuntimeFailure, UsageError } from '../../errors.js';
import { gram } from '../../linalg/ort-ops.js';
import { prepareData } from '../../pipeline/prepare.js';
import { openModel } from '../../runtime/open.js';
import { outputLayer } from '../../runtime/select.js';
import { readClassifierHead } from '../../runtime/classifier-head.js';
import { valuesPerItem, type ModelRunner } from '../../runtime/types.js';
import {
  LOWRANK_DEFINITION,
  LOWRANK_SOURCE,
  PosteriorMoments,
  compareHeadSubspace,
  gramRank,
  headGram,
  scaledHead,
  spectrumFromGram,
  type ClassSpectrum,
  type SubspaceComparison,
} from './dtm.js';

export interface ModelLowrankOptions {
  model: string;
  reference: string;
  dataset: string;
  split?: Split;
  limit?: number;
  perClass?: number;
  seed?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SpectrumSummary {
  /** σ_1: maximal correlation (0 = independent, 1 = some class set determined by x). */
  sigma1: number;
  /** Σσ_i². */
  energy: number;
  singularValues: number[];
}

export interface ModelLowrankRow {
  k: number;
  /** σ_k(B̃) of the reference posteriors. */
  sigma: number;
  /** Head H = √P(y)·centred W alone (not invariant to invertible maps of the features). */
  raw: SubspaceComparison;
  /** Head whitened by the features: top-k of H Σ_f Hᵀ = Cov of the scaled, centred logits (invariant); null without features. */
  whitened: SubspaceComparison | null;
  /** Whitened head against the model's own posterior B̃ (null without features). */
  whitenedSelf: SubspaceComparison | null;
}

export interface ModelLowrankResult {
  definition: string;
  source: string;
  model: string;
  reference: string;
  dataset: string;
  split: string | null;
  items: number;
  K: number;
  head: { description: string; K: number; d: number; inputLayer: string | null; outputLayer: string; rank: number };
  /** P(y) from the reference posteriors (mean over the items). */
  py: number[];
  /** B̃ of the reference posteriors with P(x) = 1/N. */
  referenceDtm: SpectrumSummary;
  /** B̃ of the model's own posteriors. */
  selfDtm: SpectrumSummary;
  /** MMSE matrix (one-hot Y, reference posteriors): singular values. */
  mmse: SpectrumSummary;
  accuracy: { model: number; reference: number; agreement: number };
  /** One row per k = 1..K − 1. */
  rows: ModelLowrankRow[];
  elapsedMs: number;
}

function summary(s: ClassSpectrum): SpectrumSummary {
  return { sigma1: s.singularValues[0]!, energy: s.energy, singularValues: Array.from(s.singularValues) };
}

/** Row-wise softmax unless the rows already are probability vectors. */
function toPosteriors(v: Float32Array, n: number, K: number): Float64Array {
  let isProb = true;
  for (let i = 0; i < n && isProb; i++) {
    let s = 0;
    for (let y = 0; y < K; y++) {
      const p = v[i * K + y]!;
      if (!(p >= 0)) {
        isProb = false;
        break;
      }
      s += p;
    }
    if (Math.abs(s - 1) > 1e-3) isProb = false;
  }
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    if (isProb) {
      let s = 0;
      for (let y = 0; y < K; y++) s += v[i * K + y]!;
      for (let y = 0; y < K; y++) out[i * K + y] = v[i * K + y]! / s;
      continue;
    }
    let m = -Infinity;
    for (let y = 0; y < K; y++) m = Math.max(m, v[i * K + y]!);
    let s = 0;
    for (let y = 0; y < K; y++) {
      const e = Math.exp(v[i * K + y]! - m);
      out[i * K + y] = e;
      s += e;
    }
    for (let y = 0; y < K; y++) out[i * K + y]! /= s;
  }
  return out;
}

function argmax(v: ArrayLike<number>, o: number, K: number): number {
  let best = 0;
  for (let y = 1; y < K; y++) if (v[o + y]! > v[o + best]!) best = y;
  return best;
}

/**
 * Model mode: the model's classifier head against B̃ of a reference model's posteriors over a
 * dataset (P(x) = 1/N over the chosen images). One pass runs both models batch by batch.
 */
export async function lowrankModel(opts: ModelLowrankOptions): Promise<ModelLowrankResult> {
  const t0 = performance.now();
  const data = await prepareData(opts.dataset, opts.split ? { split: opts.split } : {}, {
    ...(opts.perClass !== undefined ? { perClass: opts.perClass } : {}),
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    seed: opts.seed ?? 0,
  });
  const ds = data.dataset;
  const idx = data.indices;
  const K0 = ds.classes.length;
  if (idx.length < 2) throw new UsageError(`dataset ${opts.dataset}: ${idx.length} item(s) selected; the analysis needs at least two`);
  const model = await openModel(opts.model);
  let reference: ModelRunner | null = null;
  try {
    const head = await readClassifierHead(model, opts.model);
    reference = await openModel(opts.reference);
    const refOut = outputLayer(reference.layers());
    const refK = valuesPerItem(refOut.shape);
    if (refK !== head.K) throw new UsageError(`the reference ${opts.reference} scores ${refK} classes but the head of ${opts.model} has ${head.K}`);
    if (K0 !== head.K) throw new UsageError(`dataset ${opts.dataset} has ${K0} classes but the head of ${opts.model} has ${head.K}`);
    const K = head.K;
    const d = head.d;
    const modelPre = inferPreprocess(model.inputShape, ds);
    const refPre = inferPreprocess(reference.inputShape, ds);
    const refMoments = new PosteriorMoments(K);
    const selfMoments = new PosteriorMoments(K);
    const featSum = new Float64Array(d);
    let featShift: Float64Array | null = null;
    const featGram = head.inputLayer ? new Float64Array(d * d) : null;
    let correctModel = 0;
    let correctRef = 0;
    let agree = 0;
    let done = 0;
    const fetch = head.inputLayer ? [head.outputLayer, head.inputLayer] : [head.outputLayer];
    for await (const raw of batchesOf(ds, idx, opts.batchSize ?? 256)) {
      const n = raw.labels.length;
      const mOut = await model.run(preprocess(raw, modelPre), fetch);
      const rOut = await reference.run(preprocess(raw, refPre), [refOut.id]);
      const logits = mOut.get(head.outputLayer)!;
      const refT = rOut.get(refOut.id)!;
      if (logits.data.length !== n * K || refT.data.length !== n * K) throw new RuntimeFailure(`model outputs have ${logits.data.length / n} and ${refT.data.length / n} values per item; ${K} expected`);
      const qs = toPosteriors(logits.data, n, K);
      const qr = toPosteriors(refT.data, n, K);
      refMoments.add(qr, n);
      selfMoments.add(qs, n);
      for (let i = 0; i < n; i++) {
        const pm = argmax(qs, i * K, K);
        const pr = argmax(qr, i * K, K);
        if (pm === raw.labels[i]) correctModel++;
        if (pr === raw.labels[i]) correctRef++;
        if (pm === pr) agree++;
      }
      if (featGram && head.inputLayer) {
        const f = mOut.get(head.inputLayer)!;
        if (f.data.length !== n * d) throw new RuntimeFailure(`head input \`${head.inputLayer}\` has ${f.data.length / n} values per item; the head expects ${d}`);
        // Moments about the first batch's mean, not about 0: a raw second moment minus μμᵀ
        // cancels away the variance of features with large offsets (1.7e-4 relative at offset 20).
        if (!featShift) {
          featShift = new Float64Array(d);
          for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) featShift[c]! += f.data[i * d + c]! / n;
        }
        const shifted = new Float32Array(n * d);
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < d; c++) {
            const v = f.data[i * d + c]! - featShift[c]!;
            shifted[i * d + c] = v;
            featSum[c]! += v;
          }
        }
        await gram(shifted, n, d, featGram);
      }
      done += n;
      opts.onProgress?.(done, idx.length);
    }
    const N = done;
    const py = refMoments.marginal();
    if (py.some((p) => !(p > 0))) throw new RuntimeFailure('the reference gives some class zero probability on every item; B̃ is undefined for it');
    const refSpec = spectrumFromGram(refMoments.dtmGram(), K);
    const selfPy = selfMoments.marginal();
    const selfSpec = spectrumFromGram(selfMoments.dtmGram(), K);
    const mmseSpec = spectrumFromGram(refMoments.covariance(), K);
    const H = scaledHead(head.W, K, d, py);
    const rawG = headGram(H, K, d);
    let whitenedG: Float64Array | null = null;
    let whitenedSelfG: Float64Array | null = null;
    if (featGram) {
      const C = new Float64Array(d * d);
      for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) C[a * d + b] = featGram[a * d + b]! / N - (featSum[a]! / N) * (featSum[b]! / N);
      whitenedG = headGram(H, K, d, C);
      whitenedSelfG = headGram(scaledHead(head.W, K, d, selfPy), K, d, C);
    }
    const rows: ModelLowrankRow[] = [];
    for (let k = 1; k <= K - 1; k++) {
      rows.push({
        k,
        sigma: refSpec.singularValues[k - 1]!,
        raw: compareHeadSubspace(refSpec, rawG, k),
        whitened: whitenedG ? compareHeadSubspace(refSpec, whitenedG, k) : null,
        whitenedSelf: whitenedSelfG ? compareHeadSubspace(selfSpec, whitenedSelfG, k) : null,
      });
    }
    return {
      definition: LOWRANK_DEFINITION,
      source: LOWRANK_SOURCE,
      model: opts.model,
      reference: opts.reference,
      dataset: opts.dataset,
      split: opts.split ?? null,
      items: N,
      K,
      head: { description: head.description, K, d, inputLayer: head.inputLayer, outputLayer: head.outputLayer, rank: gramRank(rawG, K) },
      py: Array.from(py),
      referenceDtm: summary(refSpec),
      selfDtm: summary(selfSpec),
      mmse: summary(mmseSpec),
      accuracy: { model: correctModel / N, reference: correctRef / N, agreement: agree / N },
      rows,
      elapsedMs: performance.now() - t0,
    };
  } finally {
    await model.dispose();
    if (reference) await reference.dispose();
  }
}
