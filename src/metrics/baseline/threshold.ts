/**
 * The union-of-subspaces prediction for a random layer (docs/theory.md): classes lying on
 * subspaces of dimension r (meeting only at 0) become linearly separable after a random layer
 * σ(Wx) once its width passes D*(r). For the quadratic layer D*(r) = 1.25·r(r+1)/2, the fit of
 * the exact-test simulations (D* ≈ 1.1–1.4 × r(r+1)/2 for r = 2…12 at d = 40; `layerprobe theory
 * phase` reproduces it). ReLU-like activations (relu, leaky-relu, elu, gelu) need about twice that,
 * 2.5·r(r+1)/2. tanh gets none: an odd activation without bias maps x and −x of one class to φ and
 * −φ, and a linear readout cannot put both on the positive side.
 *
 * The verdict states the prediction and when its assumptions visibly fail on real data:
 *   - no prediction: tanh, or an input that does not vary (r̂ = 0);
 *   - assumption does not hold (r̂ close to the input width): 2r̂ > d, so any two r̂-dimensional
 *     class subspaces of R^d share at least a (2r̂ − d)-dimensional intersection and the theory
 *     predicts no width separates them;
 *   - assumption does not hold (random layer already separates): D < D*(r̂), yet the random layer
 *     of this width already separates the classes (LP: ≥ half of the class pairs; else held-out κ
 *     ≥ 0.95; else probe accuracy more than halfway from chance to 1): real classes differ by more
 *     than their subspaces (their means, above all);
 *   - above threshold: D ≥ D*(r̂); below threshold: D < D*(r̂).
 */
import type { Activation } from '../../features/random-layer.js';

/** Quadratic-layer constant of the fitted law D*(r) = c·r(r+1)/2. */
export const QUADRATIC_THRESHOLD_FACTOR = 1.25;

/** Energy shares at which r̂ is offered; the verdict uses VERDICT_ENERGY. */
export const ENERGY_LEVELS = [0.5, 0.8, 0.9, 0.95, 0.99] as const;
/**
 * 95%: the level of `theory rank` and of the union-of-subspaces paper's own real-data estimate,
 * and the conservative one (the largest r̂ of the usual levels): a layer above threshold at 95% is
 * above it at every lower level.
 */
export const VERDICT_ENERGY = 0.95;

/** The fitted threshold law D*(r); null where no width suffices (tanh). */
export function predictedThreshold(r: number, activation: Activation): number | null {
  const quad = (QUADRATIC_THRESHOLD_FACTOR * r * (r + 1)) / 2;
  switch (activation) {
    case 'quadratic':
      return quad;
    case 'relu':
    case 'leaky-relu':
    case 'elu':
    case 'gelu':
      return 2 * quad;
    case 'tanh':
      return null;
  }
}

export type VerdictKind = 'above threshold' | 'below threshold' | 'assumption does not hold' | 'no prediction';

/** What the random layer measured, strongest evidence first (LP, then κ, then the probe). */
export interface RandomSeparation {
  lpSeparableFraction?: number;
  heldoutKappa?: number;
  probeHeldoutAccuracy?: number;
  /** Held-out accuracy of the majority class (the probe's chance level). */
  probeChance?: number;
}

export interface RankAtEnergy {
  energy: number;
  /** max over classes of the class's energy rank (the hardest class). */
  rHat: number;
  perClass: number[];
  dStar: number | null;
  ratio: number | null;
  /** 2r̂ ≤ d: two class subspaces of this dimension can meet only at 0. */
  subspacesFit: boolean;
}

export interface TheoryVerdict {
  kind: VerdictKind;
  /** Plain-language sentence, starting with the kind. */
  text: string;
  /** Which measurement showed the random layer separating (assumption check), if any. */
  separatedBy: string | null;
}

/** Did the random layer separate the classes, by the strongest measurement available? */
export function randomSeparates(s: RandomSeparation): { separates: boolean; by: string } | null {
  if (s.lpSeparableFraction !== undefined && Number.isFinite(s.lpSeparableFraction)) {
    return { separates: s.lpSeparableFraction >= 0.5, by: `LP: ${(100 * s.lpSeparableFraction).toFixed(0)}% of class pairs separable` };
  }
  if (s.heldoutKappa !== undefined && Number.isFinite(s.heldoutKappa)) {
    return { separates: s.heldoutKappa >= 0.95, by: `held-out κ ${s.heldoutKappa.toFixed(3)} (1 − κ = ${(1 - s.heldoutKappa).toFixed(3)})` };
  }
  if (s.probeHeldoutAccuracy !== undefined && Number.isFinite(s.probeHeldoutAccuracy)) {
    const chance = s.probeChance ?? 0;
    return { separates: s.probeHeldoutAccuracy >= (1 + chance) / 2, by: `probe held-out accuracy ${s.probeHeldoutAccuracy.toFixed(3)} (chance ${chance.toFixed(3)})` };
  }
  return null;
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(2));

/** The verdict for one layer from its r̂ ladder (`levels` must contain `energy`). */
export function theoryVerdict(p: { width: number; inputDim: number; activation: Activation; energy: number; levels: readonly RankAtEnergy[]; random: RandomSeparation }): TheoryVerdict {
  const at = p.levels.find((l) => l.energy === p.energy);
  if (!at) throw new Error(`internal: no r̂ at energy ${p.energy}`);
  const pct = (e: number) => `${Math.round(100 * e)}%`;
  const where = `r̂ = ${at.rHat} (${pct(p.energy)} energy, largest class) of the ${p.inputDim}-wide input`;
  if (at.dStar === null) {
    return { kind: 'no prediction', text: `no prediction: the theory gives no threshold width for ${p.activation} (an odd activation without bias maps x and −x of a class to φ and −φ)`, separatedBy: null };
  }
  if (at.rHat === 0) return { kind: 'no prediction', text: 'no prediction: the layer input does not vary within classes (r̂ = 0)', separatedBy: null };
  const ratio = at.ratio!;
  const pred = `D = ${p.width}, D*(r̂) = ${fmt(at.dStar)} for ${p.activation}${p.activation === 'quadratic' ? '' : ' (≈ 2× the quadratic layer)'}, D/D* = ${fmt(ratio)}`;
  if (!at.subspacesFit) {
    const alt = [...p.levels].filter((l) => l.subspacesFit && l.rHat > 0 && l.ratio !== null).sort((a, b) => b.energy - a.energy)[0];
    const altText = alt ? `; at ${pct(alt.energy)} energy r̂ = ${alt.rHat} fits (D*(r̂) = ${fmt(alt.dStar!)}, D/D* = ${fmt(alt.ratio!)}, ${alt.ratio! >= 1 ? 'above' : 'below'} threshold)` : '';
    return {
      kind: 'assumption does not hold',
      text: `assumption does not hold: r̂ close to the input width — ${where}: 2r̂ > ${p.inputDim}, so two class subspaces of that dimension share at least a ${2 * at.rHat - p.inputDim}-dimensional intersection and no width separates them in theory; ${pred} is no prediction here${altText}`,
      separatedBy: null,
    };
  }
  const sep = randomSeparates(p.random);
  if (ratio < 1 && sep?.separates) {
    return {
      kind: 'assumption does not hold',
      text: `assumption does not hold: the random layer already separates far below D* — ${where}, ${pred}, yet the random layer reaches ${sep.by}; the classes differ by more than their subspaces (their means, above all), so the subspace threshold understates what width alone gives`,
      separatedBy: sep.by,
    };
  }
  if (ratio >= 1) {
    const caveat = sep && !sep.separates ? `; the random layer measured does not separate (${sep.by}): the classes are not exactly on r̂-dimensional subspaces (noise beyond ${pct(p.energy)} energy)` : '';
    return { kind: 'above threshold', text: `above threshold: ${where}, ${pred}; a random layer this wide is predicted to make classes on r̂-dimensional subspaces linearly separable${caveat}`, separatedBy: null };
  }
  return { kind: 'below threshold', text: `below threshold: ${where}, ${pred}; a random layer this narrow is predicted not to separate classes on r̂-dimensional subspaces`, separatedBy: null };
}
