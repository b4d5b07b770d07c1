/**
 * Class pairs by how hard they are to tell apart, per layer, from what the report already holds:
 * 1 − κ of the pair (MD-LSM, held-out when the audit computed it, else in-sample), or else the
 * linear probe's held-out confusion between the two classes ((c_kl + c_lk)/(n_k + n_l)). No
 * extra model runs: both come from the layer's detail in report.json.
 */
import type { LayerReport, ModelReport } from './schema.js';

export type PairSource = '1 − κ held-out' | '1 − κ in-sample' | 'probe confusion';

export interface LayerPairs {
  layer: LayerReport;
  source: PairSource;
  /** Every pair k < l with a score, hardest (highest score) first; ties in class order. */
  pairs: { k: number; l: number; score: number }[];
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A K×K numeric matrix from a detail field (nulls kept), or undefined when it is not one. */
export function squareMatrix(m: unknown, K: number): (number | null)[][] | undefined {
  if (!Array.isArray(m) || m.length !== K) return undefined;
  const out: (number | null)[][] = [];
  for (const row of m) {
    if (!Array.isArray(row) || row.length !== K) return undefined;
    out.push(row.map((v: unknown) => (finite(v) ? v : null)));
  }
  return out;
}

function sorted(pairs: { k: number; l: number; score: number }[]): { k: number; l: number; score: number }[] {
  return pairs.sort((a, b) => b.score - a.score || a.k - b.k || a.l - b.l);
}

/** The probe's held-out confusion counts of a layer (rows: true class, columns: predicted). */
export function probeConfusion(layer: LayerReport, K: number): number[][] | undefined {
  const m = squareMatrix(layer.metrics.probe_heldout_accuracy?.detail?.confusion, K);
  return m && m.every((r) => r.every((v) => v !== null)) ? (m as number[][]) : undefined;
}

/** The pairs of one layer, by the best source it has; undefined when it has none. */
export function layerPairs(layer: LayerReport, K: number): LayerPairs | undefined {
  if (K < 2) return undefined;
  for (const [key, source] of [
    ['mdlsm_heldout_kappa', '1 − κ held-out'],
    ['mdlsm_kappa', '1 − κ in-sample'],
  ] as const) {
    const d = layer.metrics[key]?.detail;
    const m = squareMatrix(d?.matrix ?? d?.pairs, K);
    if (!m) continue;
    const pairs: { k: number; l: number; score: number }[] = [];
    for (let k = 0; k < K; k++) {
      for (let l = k + 1; l < K; l++) {
        const a = m[k]![l];
        const b = m[l]![k];
        const v = a ?? b;
        if (v !== null && v !== undefined) pairs.push({ k, l, score: 1 - v });
      }
    }
    if (pairs.length) return { layer, source, pairs: sorted(pairs) };
  }
  const c = probeConfusion(layer, K);
  if (c) {
    const n = c.map((r) => r.reduce((s, v) => s + v, 0));
    const pairs: { k: number; l: number; score: number }[] = [];
    for (let k = 0; k < K; k++) for (let l = k + 1; l < K; l++) if (n[k]! + n[l]! > 0) pairs.push({ k, l, score: (c[k]![l]! + c[l]![k]!) / (n[k]! + n[l]!) });
    if (pairs.length) return { layer, source: 'probe confusion', pairs: sorted(pairs) };
  }
  return undefined;
}

export interface HardestPairs {
  /** Per layer that has pair scores, in depth order. */
  layers: LayerPairs[];
  /** The pairs with the highest mean score over those layers, hardest first. */
  overall: { k: number; l: number; mean: number; scores: (number | null)[] }[];
  /** The pair that is hardest at the most layers, and at which. */
  top?: { k: number; l: number; layers: string[] };
}

/** The k hardest class pairs of a model, tracked across its layers. */
export function hardestPairs(model: ModelReport, K: number, k = 3): HardestPairs {
  const layers = model.layers.map((l) => layerPairs(l, K)).filter((p): p is LayerPairs => p !== undefined);
  if (layers.length === 0) return { layers, overall: [] };
  const idx = (a: number, b: number) => a * K + b;
  const sum = new Map<number, { s: number; n: number; scores: (number | null)[] }>();
  layers.forEach((lp, li) => {
    for (const p of lp.pairs) {
      const e = sum.get(idx(p.k, p.l)) ?? { s: 0, n: 0, scores: layers.map(() => null) };
      e.s += p.score;
      e.n++;
      e.scores[li] = p.score;
      sum.set(idx(p.k, p.l), e);
    }
  });
  const overall = [...sum]
    .map(([i, e]) => ({ k: Math.floor(i / K), l: i % K, mean: e.s / e.n, scores: e.scores }))
    .sort((a, b) => b.mean - a.mean || a.k - b.k || a.l - b.l)
    .slice(0, k);
  const wins = new Map<number, string[]>();
  for (const lp of layers) {
    const t = lp.pairs[0]!;
    // A pair tied at the top with a perfectly separated score (0) is not "hardest" at all.
    if (t.score <= 0) continue;
    wins.set(idx(t.k, t.l), [...(wins.get(idx(t.k, t.l)) ?? []), lp.layer.id]);
  }
  let top: HardestPairs['top'];
  // The pair that is hardest at the most layers; equal counts go to the higher mean score.
  const meanOf = (i: number) => sum.get(i)!.s / sum.get(i)!.n;
  let topIdx = -1;
  for (const [i, ls] of wins) {
    if (!top || ls.length > top.layers.length || (ls.length === top.layers.length && meanOf(i) > meanOf(topIdx))) {
      top = { k: Math.floor(i / K), l: i % K, layers: ls };
      topIdx = i;
    }
  }
  return { layers, overall, ...(top ? { top } : {}) };
}
