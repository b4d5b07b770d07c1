/**
 * The phase-transition inset of a layer (docs/metrics/baseline.md): P(separable) of two
 * union-of-subspaces classes after a random layer of the layer's activation, against the width,
 * computed by the same code as `layerprobe theory phase` (phase.ts) at cheap settings — a few
 * widths, a few trials — so the audit can afford it for every layer.
 *
 * A real layer's r̂ is often 20–100, where one phase column would cost minutes (the sample test
 * needs ~8·D* points per class). D* scales as r(r+1)/2, so the curve is computed at
 * r_inset = min(r̂, INSET_MAX_R) and given on the normalised width axis D/D*(r_inset); the layer
 * sits on that axis at its own D/D*(r̂). `widthAtRHat` rescales each point to the layer's r̂
 * (D · D*(r̂)/D*(r_inset)); `scaled` says when that happened. The ambient dimension is fixed
 * (INSET_D): D* does not move with d (`theory phase --vary width,ambient`).
 */
import type { Activation } from '../../features/random-layer.js';
import { phaseTransition } from './phase.js';
import { predictedThreshold } from './threshold.js';

export const INSET_MAX_R = 4;
export const INSET_D = 40;
export const INSET_TRIALS = 6;
/** Grid widths as multiples of D*(r_inset). */
export const INSET_RATIOS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2] as const;

export interface PhaseInset {
  definition: string;
  activation: Activation;
  /** The r the curve was computed at, and the layer's r̂. */
  r: number;
  rHat: number;
  /** True when r < r̂ and the widths were rescaled to r̂. */
  scaled: boolean;
  d: number;
  K: number;
  test: 'exact' | 'sample';
  trials: number;
  seed: number;
  /** D*(r) of the fitted law, and the 50% width the trials measured (null: outside the grid). */
  predictedDStar: number;
  measuredDStar: number | null;
  points: { width: number; ratio: number; widthAtRHat: number; probability: number }[];
  elapsedMs: number;
}

/** Null where the theory has no threshold (tanh) or the input has no spread (r̂ = 0). */
export async function phaseInset(opts: { activation: Activation; rHat: number; seed: number; trials?: number }): Promise<PhaseInset | null> {
  const { activation, rHat } = opts;
  if (rHat < 1) return null;
  const r = Math.min(rHat, INSET_MAX_R);
  const dStar = predictedThreshold(r, activation);
  const dStarHat = predictedThreshold(rHat, activation);
  if (dStar === null || dStarHat === null) return null;
  const widths = [...new Set(INSET_RATIOS.map((q) => Math.max(1, Math.round(q * dStar))))];
  const trials = opts.trials ?? INSET_TRIALS;
  const res = await phaseTransition({ vary: 'intrinsic', values: [r], widths, d: INSET_D, K: 2, activation, trials, seed: opts.seed });
  const col = res.columns[0]!;
  return {
    definition: `P(separable) of 2 union-of-subspaces classes (r = ${r}, d = ${INSET_D}) after a random ${activation} layer, ${trials} trials per width, ${res.test} test (theory phase)${r < rHat ? `; widths rescaled to r̂ = ${rHat} by D*(r̂)/D*(r)` : ''}`,
    activation,
    r,
    rHat,
    scaled: r < rHat,
    d: INSET_D,
    K: 2,
    test: res.test,
    trials,
    seed: opts.seed,
    predictedDStar: dStar,
    measuredDStar: col.dStar,
    points: res.widths.map((w, j) => ({ width: w, ratio: w / dStar, widthAtRHat: (w * dStarHat) / dStar, probability: col.probability[j]! })),
    elapsedMs: res.elapsedMs,
  };
}
