/** Seeded test data shared by the suites (one generator, not a copy per file). */
import { Rng } from '../../src/util/rng.js';

/**
 * n standard-normal values times `scale`, as float32: drawn from `source` when it is an Rng
 * (continuing its stream, so several arrays can come from one seed) or from a fresh Rng(source).
 */
export function randn(source: Rng | number, n: number, scale = 1): Float32Array {
  const rng = typeof source === 'number' ? new Rng(source) : source;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}
