/**
 * Geometry of a trained deep linear network (docs/theory.md): C_l and D_l per layer, the line fits
 * of ln C_l and D_l over the hidden layers, the weights' singular value spectra and the predicted
 * compression ratio.
 */
import { singularValues } from '../../linalg/dense.js';
import { linearFit } from '../../stats/line-fit.js';
import { compression, discrimination } from '../../metrics/geometry.js';
import { momentsNoScatter } from '../../stats/moments.js';
import { type DeepLinearNet } from './net.js';

// ---------------------------------------------------------------------------------------------
// Geometry of the trained network

export interface LayerGeometry {
  layer: number;
  kind: 'input' | 'hidden' | 'output';
  dim: number;
  compression: number;
  discrimination: number;
  trWithin: number;
  trBetween: number;
  maxCosine: number | null;
  /** C_l / C_{l−1} (null for the input). */
  ratio: number | null;
}

export interface LineFit {
  /** Layers the line was fitted over. */
  layers: number[];
  slope: number;
  intercept: number;
  r2: number;
}


/** C_l, D_l of each feature matrix (layer 0 = input, last = output). */
export function layerGeometry(feats: readonly Float64Array[], dims: readonly number[], labels: Int32Array, K: number): LayerGeometry[] {
  const N = labels.length;
  const L = feats.length - 1;
  const out: LayerGeometry[] = [];
  feats.forEach((H, l) => {
    const m = momentsNoScatter(H, N, dims[l]!, labels, K);
    const c = compression(m);
    const dsc = discrimination(m);
    const prev = out[l - 1];
    out.push({
      layer: l,
      kind: l === 0 ? 'input' : l === L ? 'output' : 'hidden',
      dim: dims[l]!,
      compression: c.value,
      discrimination: dsc.value,
      trWithin: c.detail!.trWithin as number,
      trBetween: c.detail!.trBetween as number,
      maxCosine: (dsc.detail!.maxCosine as number | null) ?? null,
      ratio: prev ? c.value / prev.compression : null,
    });
  });
  return out;
}

export interface CompressionFit extends LineFit {
  /** exp(slope): the fitted factor per layer. */
  ratio: number;
}

/** Fits of ln C_l and D_l over the hidden layers (null with fewer than two hidden layers or non-positive C). */
export function geometryFits(layers: readonly LayerGeometry[]): { compressionFit: CompressionFit | null; discriminationFit: LineFit | null; hiddenRatios: number[]; hiddenRatioSpread: number | null } {
  const hidden = layers.filter((g) => g.kind === 'hidden');
  const ls = hidden.map((g) => g.layer);
  const cf = hidden.every((g) => g.compression > 0 && Number.isFinite(g.compression)) ? linearFit(ls, hidden.map((g) => Math.log(g.compression))) : null;
  const df = linearFit(ls, hidden.map((g) => g.discrimination));
  const hiddenRatios = hidden.slice(1).map((g) => g.ratio!);
  const finite = hiddenRatios.filter((r) => r > 0 && Number.isFinite(r));
  return {
    compressionFit: cf ? { layers: ls, ...cf, ratio: Math.exp(cf.slope) } : null,
    discriminationFit: df ? { layers: ls, ...df } : null,
    hiddenRatios,
    hiddenRatioSpread: finite.length >= 2 && finite.length === hiddenRatios.length ? Math.max(...finite) / Math.min(...finite) : null,
  };
}

export interface WeightSpectrum {
  layer: number;
  shape: [number, number];
  /** Mean of the K largest singular values. */
  topMean: number;
  /** ε_l: mean of the singular values beyond the K largest (null when there are none). */
  tailMean: number | null;
  /** All singular values, descending. */
  singularValues: number[];
}

export async function weightSpectra(net: DeepLinearNet, K: number): Promise<WeightSpectrum[]> {
  const out: WeightSpectrum[] = [];
  for (let l = 1; l <= net.weights.length; l++) {
    const rows = net.dims[l]!;
    const cols = net.dims[l - 1]!;
    const s = Array.from(await singularValues(net.weights[l - 1]!, rows, cols));
    const top = s.slice(0, K);
    const tail = s.slice(K);
    out.push({
      layer: l,
      shape: [rows, cols],
      topMean: top.reduce((a, b) => a + b, 0) / Math.max(1, top.length),
      tailMean: tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : null,
      singularValues: s,
    });
  }
  return out;
}

function median(v: readonly number[]): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface RatioPrediction {
  epsilon: number;
  /** ε_l for l = 1..L−1. */
  perLayerEpsilon: { layer: number; epsilon: number | null; top: number }[];
  n: number;
  alpha: number;
  depth: number;
  /** ρ = ε² / (n/α²)^{1/L}. */
  ratio: number;
  /** median_l (ε_l/s_l)². */
  ratioFromWeights: number;
}

/** The docs/metrics/geometry.md re-derived ratio (see DEEP_LINEAR_DEFINITIONS.epsilon / predictedRatio). */
export function predictRatio(spectra: readonly WeightSpectrum[], n: number, alpha: number): RatioPrediction {
  const L = spectra.length;
  const inner = spectra.slice(0, L - 1);
  const perLayerEpsilon = inner.map((s) => ({ layer: s.layer, epsilon: s.tailMean, top: s.topMean }));
  const eps = median(perLayerEpsilon.map((p) => p.epsilon).filter((e): e is number => e !== null));
  const fromWeights = median(perLayerEpsilon.filter((p) => p.epsilon !== null && p.top > 0).map((p) => (p.epsilon! / p.top) ** 2));
  return { epsilon: eps, perLayerEpsilon, n, alpha, depth: L, ratio: (eps * eps) / Math.pow(n / (alpha * alpha), 1 / L), ratioFromWeights: fromWeights };
}

/** Share of samples whose largest output is their class. */
export function trainingAccuracy(out: Float64Array, labels: Int32Array, K: number): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (out[i * K + k]! > out[i * K + best]!) best = k;
    if (best === labels[i]) ok++;
  }
  return labels.length ? ok / labels.length : NaN;
}

