/**
 * Per-model summaries of how the geometry moves with depth, for comparing MLP, CNN and ViT:
 * a fitted per-layer compression ratio (docs/metrics/geometry.md predicts a constant ratio in deep linear
 * networks), the discrimination slope, and where the layers become linearly decodable.
 */
import type { LayerReport, ModelReport } from '../report/schema.js';

export const TREND_DEFINITIONS = {
  compressionRatioPerLayer: 'exp of the least-squares slope of ln C over the position of the selected layers (C_{l+1}/C_l if geometric)',
  discriminationSlopePerLayer: 'least-squares slope of D over the position of the selected layers',
  probeReachesDepth: 'smallest normalised depth whose held-out probe accuracy is at least 95% of the model accuracy (or of the best layer when there is no classifier output)',
  separableDepth: 'smallest normalised depth from which every class pair is strictly linearly separable by LP (lp_separable_fraction = 1), when computed',
};

function slope(xs: number[], ys: number[]): number | null {
  if (xs.length < 2) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? num / den : null;
}

function series(layers: LayerReport[], key: string, f: (v: number) => number | null = (v) => v): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (const l of layers) {
    const v = l.metrics[key]?.value;
    if (v === null || v === undefined) continue;
    const t = f(v);
    if (t === null || !Number.isFinite(t)) continue;
    x.push(l.position);
    y.push(t);
  }
  return { x, y };
}

export function modelTrend(model: Pick<ModelReport, 'layers' | 'accuracy'>): NonNullable<ModelReport['trend']> {
  const c = series(model.layers, 'compression', (v) => (v > 0 ? Math.log(v) : null));
  const cs = slope(c.x, c.y);
  const d = series(model.layers, 'discrimination');
  const probes = model.layers.map((l) => l.metrics['probe_heldout_accuracy']?.value ?? null);
  const best = Math.max(...probes.filter((v): v is number => v !== null), -Infinity);
  const target = 0.95 * (model.accuracy?.value ?? best);
  const reach = model.layers.find((l, i) => probes[i] !== null && probes[i]! >= target);
  const lp = model.layers.map((l) => l.metrics['lp_separable_fraction']?.value ?? null);
  let sepIndex: number | null = null;
  if (lp.some((v) => v !== null)) {
    for (let i = lp.length - 1; i >= 0 && lp[i] === 1; i--) sepIndex = i;
  }
  return {
    compressionRatioPerLayer: cs === null ? null : Math.exp(cs),
    discriminationSlopePerLayer: slope(d.x, d.y),
    probeReachesDepth: Number.isFinite(best) && reach ? reach.depth : null,
    separableDepth: sepIndex === null ? null : model.layers[sepIndex]!.depth,
    definitions: TREND_DEFINITIONS,
  };
}
