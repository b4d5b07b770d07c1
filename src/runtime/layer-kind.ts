/**
 * What a layer tensor is, from its shape: a conv map, a token sequence, a vector, or something
 * else. Reductions and `--layers kind:…` rely on it, so a shape that only looks like one of them
 * must not be labelled so.
 */
import type { LayerInfo, LayerLayout } from './types.js';

/**
 * `shape` is batch-first (batch as null or a number); `layout4` is where a rank-4 map keeps its
 * channels. Rank 3 is a token sequence [T, D] only when both T and D exceed 1: [784, 1] (a flat
 * image with a trailing unit axis) and [1, 64] are vectors with a unit axis, not tokens.
 */
export function kindAndLayout(shape: readonly (number | null)[], layout4: 'NCHW' | 'NHWC'): { kind: LayerInfo['kind']; layout: LayerLayout } {
  const rank = shape.length;
  if (rank === 4) return { kind: 'conv', layout: layout4 };
  if (rank === 2) return { kind: 'dense', layout: 'NC' };
  if (rank === 3) {
    const unitAxis = shape[1] === 1 || shape[2] === 1;
    return unitAxis ? { kind: 'dense', layout: 'other' } : { kind: 'tokens', layout: 'NTD' };
  }
  return { kind: 'other', layout: 'other' };
}
