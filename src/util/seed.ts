/**
 * Seeds derived from a base seed and coordinates (grid cell, trial, purpose), so that every
 * random draw depends only on what it is for, not on the order in which a grid is walked:
 * a cell reproduces alone, and a bigger grid contains the smaller one's draws.
 */

/** 32-bit mix of the parts (murmur3's finaliser applied after each part). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    // Split non-integers and large values into two 32-bit words so that nothing collides by truncation.
    const lo = Math.floor(p) >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    for (const w of [lo, hi, Math.round((p - Math.floor(p)) * 1e9) >>> 0]) {
      h ^= w;
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** Purposes, so that the subspaces, samples and layer of one trial draw from separate streams. */
export const STREAM = { subspaces: 1, samples: 2, layer: 3, noise: 4 } as const;
