/**
 * κ and LP as report records (docs/metrics/separability.md): the per-layer keys with their
 * matrices, worst pairs, the reduction actually used, the basis (rows, PCA dims, width) and the
 * reliability rule; and the audit's warning when held-out κ is within noise of 1 everywhere.
 */
import type { MetricBasis, MetricResult } from '../types.js';
import { DEFAULT_MAX_DIM_FRACTION, type ReductionInfo } from './reduce-pca.js';
import type { MdlsmResult, SeparabilityMatrixResult } from './mdlsm.js';

/** κ and LP below this many dimensions (or below MIN_DIM_SHARE of the width they were reduced from) are marked unreliable. */
export const MIN_RELIABLE_DIMS = 10;
export const MIN_DIM_SHARE = 0.05;

/**
 * What a κ or LP value was computed on: the buffer rows (a sample), the dimension the saturation
 * guard's PCA left and the width before it. Rule (docs/metrics/separability.md): a value computed
 * in fewer than max(10, 5% of the width) dimensions — capped at the width itself — is marked
 * unreliable: "not separable" in 1–10 PCA directions of a 2,048-wide layer says little about the
 * layer. The note names the option that raises the dimension: the guard allows
 * ⌊fraction · smallest pair's rows⌋ dimensions, so more buffered rows per class (the audit's
 * `--buffer-per-class`) give more.
 */
export function separabilityBasis(reduction: ReductionInfo, rows: number, population?: number): { basis: MetricBasis; reliability: Record<string, unknown> } {
  const { dim, inputDim } = reduction;
  const floor = Math.min(inputDim, Math.max(MIN_RELIABLE_DIMS, Math.ceil(MIN_DIM_SHARE * inputDim)));
  const reduced = dim < inputDim;
  const how = reduced ? `PCA to ${dim} of ${inputDim} dims` : `all ${inputDim} dims`;
  // Sampled unless the buffer held every image the run streamed (population known and reached).
  const sampled = population === undefined || rows < population;
  const basis: MetricBasis = { n: rows, sampled, dims: dim, width: inputDim, note: `${how}, on ${rows} ${sampled ? 'buffered rows' : 'rows (every image)'}${sampled && population !== undefined ? ` of ${population}` : ''}` };
  if (dim >= floor) return { basis, reliability: { reliable: true } };
  const frac = reduction.maxDimFraction ?? DEFAULT_MAX_DIM_FRACTION;
  const perClass = Math.ceil(floor / frac / 2);
  const raise = reduced ? `; raise --buffer-per-class to ≥ ${perClass} (with at least as many images per class, --per-class) to use ≥ ${floor}: the guard allows ⌊${frac}·rows of the smallest class pair⌋ dims` : '';
  const why = `unreliable: ${how}, below the reliability floor of ${floor} (max(${MIN_RELIABLE_DIMS}, ${MIN_DIM_SHARE * 100}% of the width))${raise}`;
  basis.note = `${basis.note}; ${why}`;
  return { basis, reliability: { reliable: false, unreliable: why, reliableDims: floor, ...(reduced ? { raiseBufferPerClassTo: perClass } : {}) } };
}

/**
 * The report's per-layer numbers (keys `mdlsm_kappa`, `mdlsm_heldout_kappa`, `mdlsm_null_kappa`):
 * each is a one-vs-one mean, with its matrix, worst pair and the reduction in `detail`. Controls
 * that were not run are left out rather than reported as 0.
 */
export function mdlsmMetrics(r: MdlsmResult, population?: number): MetricResult[] {
  const out: MetricResult[] = [];
  // With no varying direction (a dead or constant layer) every score ties, and ties count as not
  // separated: κ = 0 is the definition's value, but it must not read like a measured overlap.
  const note = r.reduction.whitenedRank === 0 ? { note: 'the features do not vary (dead or constant layer): every score ties, so κ = 0 by definition' } : {};
  const rows = r.classCounts.reduce((a, b) => a + b, 0);
  const { basis, reliability } = separabilityBasis(r.reduction, rows, population);
  const common = { reduction: r.reduction, classCounts: r.classCounts, dims: r.reduction.dim, width: r.reduction.inputDim, ...reliability, ...note };
  if (r.mean !== null) {
    out.push({
      name: 'mdlsm_kappa',
      basis,
      value: r.mean,
      definition: r.definition,
      detail: { matrix: r.pairs, worst: r.worst, winners: r.winners, winnerCounts: r.winnerCounts, ...(r.oneVsRest ? { oneVsRest: r.oneVsRest } : {}), ...common, params: r.params },
    });
  }
  if (r.heldOut && r.heldOut.mean !== null) {
    out.push({
      name: 'mdlsm_heldout_kappa',
      basis,
      value: r.heldOut.mean,
      definition: `${r.definition}; held-out: directions fitted on a stratified ${r.heldOut.trainFraction} split, κ_w counted on the rest`,
      detail: { matrix: r.heldOut.matrix, worst: r.heldOut.worst, trainFraction: r.heldOut.trainFraction, ...common },
    });
  }
  // 1 − κ: κ sits at 0.96–1.00 on most layers, so the differences live in the inseparable
  // fraction, which a log scale can show (0.01 → 0.002).
  const flip = (mat: (number | null)[][]) => mat.map((row) => row.map((v) => (v === null ? null : 1 - v)));
  const nullInseparable = r.null && r.null.mean !== null ? { nullMean: 1 - r.null.mean, nullSd: r.null.sd } : {};
  if (r.mean !== null) {
    out.push({
      name: 'mdlsm_inseparable',
      value: 1 - r.mean,
      definition: `1 − ${r.definition}: the fraction of cross-class point pairs the best direction found leaves misordered (in-sample)`,
      basis,
      detail: { matrix: flip(r.pairs), worst: r.worst ? { k: r.worst.k, l: r.worst.l, inseparable: 1 - r.worst.kappa } : null, ...nullInseparable, ...common },
    });
  }
  if (r.heldOut && r.heldOut.mean !== null) {
    const h = r.heldOut;
    const value = 1 - h.mean!;
    const ci = h.inseparableCi;
    // Within noise of 1: the interval reaches 0, or less than one misordered pair is expected in
    // the smallest class pair's test comparisons.
    const withinNoiseOfOne = (ci !== null && ci[0] <= 0) || value * h.minPairComparisons < 1;
    out.push({
      name: 'mdlsm_heldout_inseparable',
      value,
      definition: `1 − held-out ${r.definition}: the fraction of held-out cross-class point pairs the directions fitted on the training split misorder`,
      basis,
      ...(ci ? { ci } : {}),
      detail: {
        matrix: flip(h.matrix),
        worst: h.worst ? { k: h.worst.k, l: h.worst.l, inseparable: 1 - h.worst.kappa } : null,
        ...nullInseparable,
        withinNoiseOfOne,
        minPairComparisons: h.minPairComparisons,
        ciMethod: `95% percentile bootstrap, ${h.bootstrapReps} resamples of the held-out rows within class, directions fixed`,
        trainFraction: h.trainFraction,
        ...common,
      },
    });
  }
  if (r.null && r.null.mean !== null) {
    out.push({
      name: 'mdlsm_null_kappa',
      basis,
      value: r.null.mean,
      definition: `${r.definition}; baseline: the same procedure on permuted labels`,
      detail: { sd: r.null.sd, permutations: r.null.permutations, values: r.null.values, ...common },
    });
    // The same null as an inseparable fraction, so the 1 − κ chart (log scale) shows chance level beside the layer.
    out.push({
      name: 'mdlsm_null_inseparable',
      basis,
      value: 1 - r.null.mean,
      definition: `1 − ${r.definition}; baseline: the same procedure on permuted labels`,
      detail: { sd: r.null.sd, permutations: r.null.permutations, values: r.null.values.map((v) => (v === null ? null : 1 - v)), ...common },
    });
  }
  return out;
}

/**
 * The warning for a model whose held-out κ is within noise of 1 on every layer (each layer's
 * `mdlsm_heldout_inseparable` has detail.withinNoiseOfOne): κ then cannot tell its layers apart.
 * Null when some layer is measurably below 1, or no layer has the key.
 */
export function kappaSaturationWarning(model: string, layers: readonly { id: string; metrics: Record<string, { value: number | null; detail?: Record<string, unknown> } | undefined> }[]): string | null {
  const rows = layers.map((l) => ({ id: l.id, m: l.metrics.mdlsm_heldout_inseparable })).filter((x) => x.m && x.m.value !== null);
  if (rows.length === 0 || !rows.every((x) => x.m!.detail?.withinNoiseOfOne === true)) return null;
  const values = rows.map((x) => x.m!.value!.toExponential(1)).join(', ');
  return `${model}: held-out κ is within noise of 1 on every layer (1 − κ = ${values}): κ cannot tell these layers apart at this sample size; read mdlsm_heldout_inseparable on a log scale, or raise --buffer-per-class`;
}

/** The report's `lp_separable_fraction`, with the K×K LP verdicts and margins in `detail`. */
export function separabilityMetrics(r: SeparabilityMatrixResult, population?: number): MetricResult[] {
  if (r.separableFraction === null) return [];
  const rows = r.classCounts.reduce((a, b) => a + b, 0);
  const { basis, reliability } = separabilityBasis(r.reduction, rows, population);
  return [
    {
      name: 'lp_separable_fraction',
      value: r.separableFraction,
      definition: r.definition,
      basis,
      detail: { matrix: r.matrix, reduction: r.reduction, dims: r.reduction.dim, width: r.reduction.inputDim, ...reliability },
    },
  ];
}
