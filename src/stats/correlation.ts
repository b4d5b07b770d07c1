/**
 * Correlation of two series: Pearson, and Spearman's ρ with average ranks for ties (the
 * tie-corrected form), over the pairs where both values are finite; and the consecutive
 * differences a "changes" correlation is taken over. Used by the training monitor's
 * synchronicity summary (docs/theory.md); null wherever a correlation has no direction.
 */
import { RuntimeFailure } from '../errors.js';

export interface Correlation {
  pearson: number | null;
  spearman: number | null;
  /** Points (checkpoints, or consecutive differences) the correlation is over. */
  n: number;
}

/** True when a series is constant up to rounding: it has no direction to correlate. */
function constant(v: readonly number[]): boolean {
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of v) {
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
  }
  return hi - lo <= 1e-12 * Math.max(Math.abs(lo), Math.abs(hi));
}

/** Pearson correlation; null with fewer than 3 finite pairs or no variance on either side. */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length) throw new RuntimeFailure(`internal: pearson of ${x.length} and ${y.length} values`);
  const n = x.length;
  if (n < 3) return null;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i]! - mx;
    const b = y[i]! - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  if (constant(x) || constant(y) || !(sxx > 0 && syy > 0)) return null;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Ranks 1..n, ties given the average of the ranks they span. */
export function averageRanks(x: readonly number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const avg = (i + j + 2) / 2;
    for (let t = i; t <= j; t++) r[order[t]![1]] = avg;
    i = j + 1;
  }
  return r;
}

/** Spearman's ρ: Pearson of the average ranks (the tie-corrected form). */
export function spearman(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length) throw new RuntimeFailure(`internal: spearman of ${x.length} and ${y.length} values`);
  if (x.length < 3) return null;
  return pearson(averageRanks(x), averageRanks(y));
}

/** Pearson and Spearman over the pairs where both values are finite. */
export function correlate(x: readonly (number | null)[], y: readonly (number | null)[]): Correlation {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const u = x[i];
    const v = y[i];
    if (typeof u === 'number' && typeof v === 'number' && Number.isFinite(u) && Number.isFinite(v)) {
      a.push(u);
      b.push(v);
    }
  }
  return { pearson: pearson(a, b), spearman: spearman(a, b), n: a.length };
}

/** Consecutive differences; a difference touching a missing value is missing. */
export function differences(x: readonly (number | null)[]): (number | null)[] {
  const out: (number | null)[] = [];
  for (let i = 1; i < x.length; i++) {
    const a = x[i - 1];
    const b = x[i];
    out.push(typeof a === 'number' && typeof b === 'number' && Number.isFinite(a) && Number.isFinite(b) ? b - a : null);
  }
  return out;
}
