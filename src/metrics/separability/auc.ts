/**
 * κ_w of docs/metrics/separability.md for one direction: the fraction of the Minkowski difference A ⊖ B on
 * the positive side of w, i.e. #{(i,j) : s_a_i > s_b_j} / (m·n) for the scores s = wᵀh. This is
 * the Mann–Whitney U of the scores with ties counted as NOT separated (strict >, a tie adds 0,
 * not ½), so κ_w = 1 exactly when every a scores strictly above every b.
 *
 * Computed by sorting in O((m+n) log(m+n)); the m·n differences are never built.
 */
import { RuntimeFailure } from '../../errors.js';

export interface PairCounts {
  /** #{(i,j) : a_i > b_j}. */
  greater: number;
  /** #{(i,j) : a_i < b_j}. */
  less: number;
  /** #{(i,j) : a_i = b_j}. */
  ties: number;
  /** m·n. */
  total: number;
}

function sortedCopy(s: ArrayLike<number>, what: string): Float64Array {
  // Float64Array.from walks a typed array through its iterator; slice() is a memcpy.
  const out = s instanceof Float64Array ? s.slice() : Float64Array.from(s);
  for (let i = 0; i < out.length; i++) {
    if (Number.isNaN(out[i]!)) throw new RuntimeFailure(`κ_w: score ${i} of ${what} is NaN`, 'the features or the direction contain NaN');
  }
  return out.sort();
}

/**
 * Counts of the pairwise order of two score lists. Both directions come out of one pass, so the
 * opposite direction −w costs nothing: κ_{−w} = less / total.
 */
export function pairCounts(scoresA: ArrayLike<number>, scoresB: ArrayLike<number>): PairCounts {
  const a = sortedCopy(scoresA, 'A');
  const b = sortedCopy(scoresB, 'B');
  const m = a.length;
  const n = b.length;
  let greater = 0;
  let less = 0;
  // For ascending a, the number of b strictly below a (lo) and at or below a (hi) only grow.
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < m; i++) {
    const v = a[i]!;
    while (lo < n && b[lo]! < v) lo++;
    if (hi < lo) hi = lo;
    while (hi < n && b[hi]! <= v) hi++;
    greater += lo;
    less += n - hi;
  }
  const total = m * n;
  return { greater, less, ties: total - greater - less, total };
}

/**
 * κ_w = #{(i,j) : s_a_i > s_b_j} / (m·n), ties counted as not separated. Undefined (NaN) when
 * either class is empty.
 */
export function kappaForDirection(scoresA: ArrayLike<number>, scoresB: ArrayLike<number>): number {
  const c = pairCounts(scoresA, scoresB);
  return c.total === 0 ? Number.NaN : c.greater / c.total;
}
