/**
 * Layer geometry of docs/metrics/geometry.md (Wang et al. 2023): within-class compression and
 * between-class discrimination. Both need only class counts, means and within-class sums of
 * squares, so they are exact from streaming statistics and cheap to bootstrap from samples.
 *
 * Classes with no samples are left out (K is the number of classes present) and listed in
 * `detail.missingClasses`.
 */
import { norm2 } from '../linalg/dense.js';
import {
  asMoments,
  betweenTrace,
  momentsNoScatter,
  presentClasses,
  totalCount,
  withinTrace,
  type ClassMoments,
  type MomentsSource,
} from '../stats/moments.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { DEFINITIONS, type MetricResult } from './types.js';

function missing(m: ClassMoments): number[] {
  const out: number[] = [];
  for (let k = 0; k < m.K; k++) if (m.counts[k] === 0) out.push(k);
  return out;
}

/**
 * C = tr(Σ_W)/tr(Σ_B). +Infinity when the class means coincide but classes have spread; NaN when
 * both traces are 0 (nothing to compare).
 */
export function compression(src: MomentsSource): MetricResult {
  const m = asMoments(src);
  const trW = withinTrace(m);
  const trB = betweenTrace(m);
  let value: number;
  if (trB > 0) value = trW / trB;
  else value = trW > 0 ? Infinity : NaN;
  return {
    name: 'compression',
    value,
    definition: DEFINITIONS.compression,
    detail: {
      trWithin: trW,
      trBetween: trB,
      N: totalCount(m),
      K: presentClasses(m).length,
      d: m.d,
      missingClasses: missing(m),
      // Per-class C_k = Var_k / tr(Σ_B): class k's own spread against the same between-class
      // spread; C is their count-weighted mean. null for a class with no rows.
      perClass: Array.from({ length: m.K }, (_, k) => (m.counts[k]! > 0 && trB > 0 ? m.ssw[k]! / m.counts[k]! / trB : null)),
    },
  };
}

/**
 * D = 1 − max_{k≠l} cos(μ_k, μ_l) over uncentred means, signed cosine. A class whose mean is the
 * zero vector has no direction: its pairs are skipped and listed; NaN when no pair is left.
 */
export function discrimination(src: MomentsSource): MetricResult {
  const m = asMoments(src);
  const { d } = m;
  const classes = presentClasses(m);
  const norms = new Map<number, number>();
  for (const k of classes) norms.set(k, norm2(m.means, d, k * d));
  const zeroNorm = classes.filter((k) => norms.get(k) === 0);
  let best = -Infinity;
  let pair: [number, number] | null = null;
  for (let a = 0; a < classes.length; a++) {
    const k = classes[a]!;
    const nk = norms.get(k)!;
    if (nk === 0) continue;
    for (let b = a + 1; b < classes.length; b++) {
      const l = classes[b]!;
      const nl = norms.get(l)!;
      if (nl === 0) continue;
      let s = 0;
      for (let j = 0; j < d; j++) s += (m.means[k * d + j]! / nk) * (m.means[l * d + j]! / nl);
      const c = Math.max(-1, Math.min(1, s));
      if (c > best) {
        best = c;
        pair = [k, l];
      }
    }
  }
  return {
    name: 'discrimination',
    value: pair ? 1 - best : NaN,
    definition: DEFINITIONS.discrimination,
    detail: {
      maxCosine: pair ? best : null,
      closestPair: pair,
      zeroNormClasses: zeroNorm,
      K: classes.length,
      N: totalCount(m),
      missingClasses: missing(m),
    },
  };
}

/** Both §1 metrics. */
export function geometry(src: MomentsSource): MetricResult[] {
  const m = asMoments(src);
  return [compression(m), discrimination(m)];
}

/** Compression of a sample matrix (the ClassStats-equivalent moments, computed exactly). */
export function compressionFromSamples(s: SampleMatrix): MetricResult {
  return compression(momentsNoScatter(s.X, s.n, s.d, s.labels, s.K));
}

export function discriminationFromSamples(s: SampleMatrix): MetricResult {
  return discrimination(momentsNoScatter(s.X, s.n, s.d, s.labels, s.K));
}
