/**
 * The two or three sentences a careful reader would write from a model's layer × metric table:
 * where compression happens (C, and the excess over a random layer), where the linear probe
 * saturates, and which class pairs stay hardest across depth. Generated from report.json only;
 * summary.txt and the HTML overview print the same sentences.
 */
import type { LayerReport, ModelReport } from './schema.js';
import { hardestPairs } from './class-pairs.js';
import { fmtNumber } from './format.js';

/** Within this much of its best value the probe counts as saturated (one percentage point). */
export const PROBE_SATURATION_TOL = 0.01;

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function valueOf(l: LayerReport, key: string): number | undefined {
  const v = l.metrics[key]?.value;
  return finite(v) ? v : undefined;
}

function at(l: LayerReport): string {
  return `${l.id} (depth ${l.depth.toFixed(2)})`;
}

function list(xs: readonly string[]): string {
  return xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;
}

/** The layers whose excess over random is clearly better, and those "no better than random". */
function excessSplit(m: ModelReport, key: string): { better: string[]; notBetter: string[] } {
  const better: string[] = [];
  const notBetter: string[] = [];
  for (const l of m.layers) {
    const nb = l.metrics[key]?.detail?.noBetterThanRandom;
    if (nb === true) notBetter.push(l.id);
    else if (nb === false) better.push(l.id);
  }
  return { better, notBetter };
}

function excessClause(m: ModelReport, key: string, what: string): string {
  const { better, notBetter } = excessSplit(m, key);
  const n = better.length + notBetter.length;
  if (n === 0) return '';
  if (notBetter.length === 0) return ` Beyond a random layer of the same width, training ${what} at every layer.`;
  if (better.length === 0) return ` Beyond a random layer of the same width, training ${what} at no layer (no better than random at ${list(notBetter)}).`;
  return ` Beyond a random layer of the same width, training ${what} at ${list(better)}; no better than random at ${list(notBetter)}.`;
}

export function compressionSentence(m: ModelReport): string | undefined {
  const ls = m.layers.filter((l) => valueOf(l, 'compression') !== undefined);
  if (ls.length === 0) return undefined;
  const c = ls.map((l) => valueOf(l, 'compression')!);
  const extra = excessClause(m, 'excess_compression', 'compresses the classes more');
  if (ls.length === 1) return `Compression: C = ${fmtNumber(c[0])} at ${at(ls[0]!)} (one layer measured).${extra}`;
  let best = -1;
  let ratio = Infinity;
  for (let i = 1; i < c.length; i++) {
    const r = c[i - 1]! > 0 ? c[i]! / c[i - 1]! : Infinity;
    if (r < ratio) {
      ratio = r;
      best = i;
    }
  }
  const lo = c.indexOf(Math.min(...c));
  if (best < 0 || ratio >= 1) return `Compression: C does not fall with depth (${fmtNumber(c[0])} at ${ls[0]!.id}, ${fmtNumber(c[c.length - 1])} at ${ls[ls.length - 1]!.id}): these layers do not compress the classes.${extra}`;
  return `Compression happens mostly between ${ls[best - 1]!.id} and ${at(ls[best]!)}: C falls from ${fmtNumber(c[best - 1])} to ${fmtNumber(c[best])} (×${ratio.toFixed(2)}); it is lowest at ${ls[lo]!.id} (${fmtNumber(c[lo])}).${extra}`;
}

export function probeSentence(m: ModelReport): string | undefined {
  const ls = m.layers.filter((l) => valueOf(l, 'probe_heldout_accuracy') !== undefined);
  if (ls.length === 0) return undefined;
  const p = ls.map((l) => valueOf(l, 'probe_heldout_accuracy')!);
  const best = Math.max(...p);
  const bi = p.indexOf(best);
  const si = p.findIndex((v) => v >= best - PROBE_SATURATION_TOL);
  const acc = m.accuracy?.value;
  const out = finite(acc) ? `; the model's own output accuracy is ${fmtNumber(acc)}` : '';
  const extra = excessClause(m, 'excess_probe_heldout_accuracy', 'makes the classes more linearly decodable');
  if (ls.length === 1) return `Linear probe: held-out accuracy ${fmtNumber(p[0])} at ${at(ls[0]!)}${out}.${extra}`;
  const head = si === ls.length - 1 ? `The linear probe keeps rising to the last layer: held-out accuracy ${fmtNumber(p[si])} at ${at(ls[si]!)}` : `The linear probe saturates at ${at(ls[si]!)}: held-out accuracy ${fmtNumber(p[si])}, within ${PROBE_SATURATION_TOL} of the best ${fmtNumber(best)}${bi === si ? '' : ` (at ${ls[bi]!.id})`}`;
  return `${head}${out}.${extra}`;
}

export function pairSentence(m: ModelReport, classes: readonly string[]): string | undefined {
  const h = hardestPairs(m, classes.length, 3);
  if (!h.top || h.layers.length === 0) return undefined;
  const name = (k: number, l: number) => `${classes[k]} vs ${classes[l]}`;
  const source = h.layers[0]!.source;
  const n = h.layers.length;
  const scores = h.layers.map((lp) => lp.pairs.find((p) => p.k === h.top!.k && p.l === h.top!.l)?.score).filter(finite);
  const where = h.top.layers.length === n ? (n === 1 ? `at ${h.layers[0]!.layer.id}, the one layer with pair scores` : 'at every layer') : `at ${h.top.layers.length} of ${n} layers, ${list(h.top.layers)}`;
  const range = scores.length > 1 ? `${source} ${fmtNumber(scores[0])} at ${h.layers[0]!.layer.id} → ${fmtNumber(scores[scores.length - 1])} at ${h.layers[n - 1]!.layer.id}` : `${source} ${fmtNumber(scores[0])}`;
  const others = h.overall.filter((p) => !(p.k === h.top!.k && p.l === h.top!.l) && p.mean > 0).map((p) => name(p.k, p.l));
  return `Hardest class pair: ${name(h.top.k, h.top.l)}, the least separable pair ${where}; ${range}${others.length ? `; the next hardest across depth: ${list(others)}` : ''}.`;
}

/** The model's sentences, in reading order; empty when the report has nothing to say them from. */
export function findings(m: ModelReport, classes: readonly string[]): string[] {
  return [compressionSentence(m), probeSentence(m), pairSentence(m, classes)].filter((s): s is string => s !== undefined);
}

/** The model's `views` record of report.json: its sentences and its hardest pairs across depth. */
export function modelViews(m: ModelReport, classes: readonly string[], k = 5): NonNullable<ModelReport['views']> {
  const h = hardestPairs(m, classes.length, k);
  return {
    findings: findings(m, classes),
    hardestPairs: h.layers.length
      ? {
          source: h.layers[0]!.source,
          layers: h.layers.map((lp) => lp.layer.id),
          pairs: h.overall.map((p) => ({
            k: p.k,
            l: p.l,
            classes: [classes[p.k] ?? String(p.k), classes[p.l] ?? String(p.l)] as [string, string],
            mean: p.mean,
            scores: p.scores,
            hardestAt: h.layers.filter((lp) => lp.pairs[0] && lp.pairs[0].k === p.k && lp.pairs[0].l === p.l && lp.pairs[0].score > 0).map((lp) => lp.layer.id),
          })),
        }
      : null,
  };
}
