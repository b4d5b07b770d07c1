/**
 * The metric catalogue: one row per report key, and the one place a metric's name, group,
 * definition, docs anchor, labels, chart, better-direction and exact-or-sampled flag live.
 * `--metrics` help, the metric groups, gate checks, summary/table columns, chart series, CSV
 * columns and the HTML definitions all read it; `computeLayerMetrics` walks it.
 *
 * Modelled on tfjs-core's name-keyed kernel registry and scikit-learn's scorer registry: a metric
 * is looked up by its key (`metricRow('probe_heldout_accuracy')`), and adding one is one row plus
 * the function that computes it (`registerMetric`), and its test.
 */
import type { ClassStats } from '../stats/accumulator.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { momentsNoScatter } from '../stats/moments.js';
import { compression, discrimination } from './geometry.js';
import { cdnv, nc1, nc2, nc3, nc4 } from './collapse.js';
import { rank } from './rank.js';
import { linearProbe, type ProbeOptions } from './probe.js';
import type { MeanPassResult } from '../stats/mean-pass.js';
import { bootstrapCis, excludesValue, rescaledInterval } from './bootstrap.js';
import { mdlsm, mdlsmMetrics, separabilityMatrix, separabilityMetrics, MDLSM_DEFINITION, LP_DEFINITION } from './separability/index.js';
import { DEFINITIONS, type MetricResult } from './types.js';

/** The groups `--metrics` selects; each catalogue row that a layer computes belongs to one. */
export const METRIC_GROUPS = ['geometry', 'collapse', 'rank', 'probe', 'mdlsm', 'separable'] as const;
export type MetricGroup = (typeof METRIC_GROUPS)[number];

/**
 * The order the walk computes the groups in (the rows keep page order). It is the order of the keys
 * in report.json, kept from before the catalogue so reports stay comparable line by line.
 */
export const COMPUTE_ORDER: readonly MetricGroup[] = ['geometry', 'collapse', 'rank', 'mdlsm', 'separable', 'probe'];

/** Where a key comes from: a metric group, the random-layer baseline, or compare's CKA. */
export type MetricSource = MetricGroup | 'baseline' | 'compare';

/** The docs page (`docs/metrics/<family>.md`) a key's definition lives on. */
export type MetricFamily = 'geometry' | 'collapse' | 'rank' | 'probe' | 'separability' | 'similarity' | 'baseline';

export type Dash = 'solid' | 'dashed' | 'dotted';

/**
 * Saturation guard for the audit's κ and LP: PCA to at most 1/20 of the smallest class pair's rows.
 * At ¼ in-sample κ sat at 0.98–0.999 for every layer with a permutation baseline of ~0.83, so it
 * could not tell layers apart; at 1/20 in-sample, held-out and null κ separate coherently
 * (0.86 / 0.81 / 0.64 on the separability bench data).
 */
export const AUDIT_MAX_DIM_FRACTION = 0.05;

export interface LayerMetricOptions {
  metrics: readonly MetricGroup[];
  seed: number;
  ci?: number;
  bootstrapReps?: number;
  probeLambda?: number;
  /** Whether the buffer rows carry the model's predictions (NC4). */
  hasPredictions: boolean;
  /** The classifier head's weights (K×d, row-major) when this layer is the head's input (NC3). */
  classifierWeights?: Float64Array;
  /** This layer's second streaming pass (exact NC1 above the moment limit, NC4 over all N). */
  meanPass?: MeanPassResult;
  /** The probe's own (larger, possibly projected) sample of this layer, and its options. */
  probeSamples?: SampleMatrix;
  probe?: ProbeOptions;
}

/** What a compute function gets: the layer's exact streaming statistics and its sample buffer. */
export interface LayerInputs {
  stats: ClassStats;
  samples: SampleMatrix;
  opts: LayerMetricOptions;
}

/**
 * The function that produces some keys of a group for one layer. Several rows share one compute
 * when one computation yields them together (the probe's four accuracies); the walk runs it once.
 * `applies` says whether it has anything to say for this layer (NC3 only at the head's input).
 */
export interface MetricCompute {
  id: string;
  run(input: LayerInputs): Promise<MetricResult[]>;
  applies?(input: LayerInputs): boolean;
}

export interface MetricRow {
  key: string;
  source: MetricSource;
  family: MetricFamily;
  /** The function that computes it; absent for baseline and compare keys (computed there). */
  compute?: MetricCompute;
  /** For baseline keys: the metric group this key also needs. */
  needs?: MetricGroup;
  /** One-line definition (the formula); report.json carries each value's full definition. */
  definition: string;
  /** `docs/metrics/<family>.md#<key>`. */
  docs: string;
  /** Label in charts, the HTML tables and definitions. */
  label: string;
  /** Column title in the terminal table and summary.txt; absent: not a summary column. */
  short?: string;
  /** The legend line its summary column gets. */
  legend?: string;
  /**
   * The chart it is a series of, its label there and its dash; `flip`: drawn as −value so that up
   * is better in a chart whose other series are higher-is-better (an excess of C). Absent: charted
   * on its own; false: not charted (it repeats another series, as 1 − κ does κ).
   */
  chart?: { id: string; label: string; dash?: Dash; flip?: boolean } | false;
  better: 'higher' | 'lower' | 'none';
  /** `exact`: over all N images (streaming statistics); `sampled`: on the layer's sample buffer. */
  basis: 'exact' | 'sampled';
}

/**
 * Bootstrap intervals for results computed together from one resample (they share the work),
 * attached to each result; a result whose interval is undefined says so instead. The values come
 * from all N images and the resamples from the buffer's m rows, so each interval is rescaled from
 * m to N (`rescaledInterval`); non-negative statistics keep a non-negative lower end.
 */
async function withCis(results: MetricResult[], fn: (m: SampleMatrix) => number[], samples: SampleMatrix, N: number, opts: LayerMetricOptions): Promise<MetricResult[]> {
  if (opts.ci === undefined) return results;
  const bs = await bootstrapCis(fn, samples, { level: opts.ci, reps: opts.bootstrapReps ?? 200, seed: opts.seed });
  return results.map((r, k) => {
    const b = bs[k]!;
    const ciMethod =
      `bias-corrected basic bootstrap, level ${b.level}: ${b.reps} stratified resamples of the ${samples.n} buffered samples` +
      (samples.n < N ? `, rescaled to the ${N} images the value comes from (bias × m/N, spread × √(m/N))` : '');
    const detail = { ...r.detail, ciMethod, ciFailedReplicates: b.failed, ciBufferEstimate: b.estimate };
    const ci = rescaledInterval(r.value, b, samples.n, N);
    if (ci) {
      if (ci[0] < 0 && r.value >= 0) ci[0] = 0;
      const outside = excludesValue(r.value, ci);
      const ciNote = `the interval does not contain the plug-in value: resampling shows the plug-in estimate is biased ${r.value < ci[0] ? 'low' : 'high'} at this sample size by more than its spread, and the interval corrects for that bias`;
      return { ...r, ci, detail: outside ? { ...detail, ciNote } : detail };
    }
    return { ...r, detail: { ...detail, ciNote: `no interval: only ${b.reps - b.failed} of ${b.reps} resamples gave a finite value` } };
  });
}

const geometry: MetricCompute = {
  id: 'geometry',
  run: ({ stats, samples, opts }) => {
    const geometryOf = (m: SampleMatrix): number[] => {
      const mom = momentsNoScatter(m.X, m.n, m.d, m.labels, m.K);
      return [compression(mom).value, discrimination(mom).value];
    };
    return withCis([compression(stats), discrimination(stats)], geometryOf, samples, stats.N, opts);
  },
};
const collapseNc1: MetricCompute = { id: 'nc1', run: async ({ stats, samples, opts }) => [await nc1(stats, samples, opts.meanPass ? { meanPass: opts.meanPass } : {})] };
const collapseNc2: MetricCompute = { id: 'nc2', run: async ({ stats }) => nc2(stats) };
const collapseNc3: MetricCompute = {
  id: 'nc3',
  applies: ({ opts }) => opts.classifierWeights !== undefined,
  run: async ({ stats, opts }) => [nc3(stats, opts.classifierWeights!)],
};
const collapseNc4: MetricCompute = {
  id: 'nc4',
  applies: ({ samples, opts }) => opts.hasPredictions && samples.predictions !== undefined,
  run: async ({ stats, samples, opts }) => [await nc4(stats, samples, samples.predictions, opts.meanPass ? { meanPass: opts.meanPass } : {})],
};
const collapseCdnv: MetricCompute = { id: 'cdnv', run: async ({ stats }) => [cdnv(stats)] };
const rankCompute: MetricCompute = { id: 'rank', run: ({ stats, samples }) => rank(samples, { population: stats.N }) };
const mdlsmCompute: MetricCompute = {
  id: 'mdlsm',
  run: async ({ stats, samples, opts }) => mdlsmMetrics(await mdlsm(samples, { seed: opts.seed, maxDimFraction: AUDIT_MAX_DIM_FRACTION }), stats.N),
};
const separableCompute: MetricCompute = {
  id: 'separable',
  run: async ({ stats, samples, opts }) => separabilityMetrics(await separabilityMatrix(samples, { seed: opts.seed, maxDimFraction: AUDIT_MAX_DIM_FRACTION }), stats.N),
};
const probeCompute: MetricCompute = {
  id: 'probe',
  // The audit passes the probe's own sample (cross-fitted, up to 1,000 rows per class); without
  // one (extract, tests) the probe runs on the layer's buffer with its single split.
  run: async ({ samples, opts }) => (await linearProbe(opts.probeSamples ?? samples, { seed: opts.seed, ...(opts.probeLambda !== undefined ? { lambda: opts.probeLambda } : {}), ...opts.probe })).metrics,
};

type RowInit = Omit<MetricRow, 'docs'>;
const row = (r: RowInit): MetricRow => ({ ...r, docs: `docs/metrics/${r.family}.md#${r.key}` });

/**
 * The rows, in page order: the walk computes them in this order, so it is also the order of the
 * keys in report.json, the table columns and the charts.
 */
const ROWS: MetricRow[] = [
  row({ key: 'compression', source: 'geometry', family: 'geometry', compute: geometry, definition: DEFINITIONS.compression, label: 'C', short: 'C', legend: 'C = tr(Σ_W)/tr(Σ_B) (smaller: more compressed)', chart: { id: 'compression', label: 'C' }, better: 'lower', basis: 'exact' }),
  row({ key: 'discrimination', source: 'geometry', family: 'geometry', compute: geometry, definition: DEFINITIONS.discrimination, label: 'D', short: 'D', legend: 'D = 1 − max cos between class means', chart: { id: 'discrimination', label: 'D' }, better: 'higher', basis: 'exact' }),
  row({ key: 'nc1', source: 'collapse', family: 'collapse', compute: collapseNc1, definition: DEFINITIONS.nc1, label: 'NC1', short: 'NC1', legend: 'NC1 = tr(Σ_W Σ_B⁺)/K', chart: { id: 'nc1', label: 'NC1' }, better: 'lower', basis: 'exact' }),
  row({ key: 'nc2_equinorm', source: 'collapse', family: 'collapse', compute: collapseNc2, definition: DEFINITIONS.nc2Equinorm, label: 'NC2 equinorm', chart: { id: 'nc2', label: 'equinorm' }, better: 'lower', basis: 'exact' }),
  row({ key: 'nc2_equiangularity', source: 'collapse', family: 'collapse', compute: collapseNc2, definition: DEFINITIONS.nc2Equiangularity, label: 'NC2 equiangularity', chart: { id: 'nc2', label: 'equiangularity', dash: 'dashed' }, better: 'lower', basis: 'exact' }),
  row({ key: 'nc2_max_angle', source: 'collapse', family: 'collapse', compute: collapseNc2, definition: DEFINITIONS.nc2MaxAngle, label: 'NC2 max-angle', chart: { id: 'nc2', label: 'max-angle', dash: 'dotted' }, better: 'lower', basis: 'exact' }),
  row({ key: 'nc3', source: 'collapse', family: 'collapse', compute: collapseNc3, definition: DEFINITIONS.nc3, label: 'NC3', short: 'NC3', legend: 'NC3 = ‖W/‖W‖ − M̃ᵀ/‖M̃‖‖², at the layer feeding the classifier head', chart: { id: 'nc3', label: 'NC3' }, better: 'lower', basis: 'exact' }),
  row({ key: 'nc4', source: 'collapse', family: 'collapse', compute: collapseNc4, definition: DEFINITIONS.nc4, label: 'NC4', chart: { id: 'nc4', label: 'NC4' }, better: 'lower', basis: 'exact' }),
  row({ key: 'cdnv', source: 'collapse', family: 'collapse', compute: collapseCdnv, definition: DEFINITIONS.cdnv, label: 'CDNV', short: 'CDNV', legend: 'CDNV = mean over class pairs of (Var_k + Var_l)/(2‖μ_k − μ_l‖²)', chart: { id: 'cdnv', label: 'CDNV' }, better: 'lower', basis: 'exact' }),
  row({ key: 'numerical_rank', source: 'rank', family: 'rank', compute: rankCompute, definition: DEFINITIONS.numericalRank, label: 'rank95', short: 'rank95', legend: 'rank95 = numerical rank (95% of the singular-value sum)', chart: { id: 'rank', label: 'rank95' }, better: 'none', basis: 'sampled' }),
  row({ key: 'effective_rank', source: 'rank', family: 'rank', compute: rankCompute, definition: DEFINITIONS.effectiveRank, label: 'eff. rank', chart: { id: 'rank', label: 'effective rank', dash: 'dashed' }, better: 'none', basis: 'sampled' }),
  row({ key: 'probe_train_accuracy', source: 'probe', family: 'probe', compute: probeCompute, definition: DEFINITIONS.probe, label: 'probe train', chart: { id: 'probe', label: 'train' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'probe_heldout_accuracy', source: 'probe', family: 'probe', compute: probeCompute, definition: DEFINITIONS.probe, label: 'probe held-out', short: 'probe', legend: 'probe = held-out accuracy of a linear probe', chart: { id: 'probe', label: 'held-out' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'probe_control_train_accuracy', source: 'probe', family: 'probe', compute: probeCompute, definition: `${DEFINITIONS.probe}; control: labels permuted`, label: 'shuffled train', chart: { id: 'probe', label: 'shuffled labels, train', dash: 'dotted' }, better: 'none', basis: 'sampled' }),
  row({ key: 'probe_control_heldout_accuracy', source: 'probe', family: 'probe', compute: probeCompute, definition: `${DEFINITIONS.probe}; control: labels permuted`, label: 'shuffled held-out', short: 'shuffled', legend: 'shuffled = the same probe fitted on permuted labels', chart: { id: 'probe', label: 'shuffled labels, held-out', dash: 'dotted' }, better: 'none', basis: 'sampled' }),
  row({ key: 'mdlsm_kappa', source: 'mdlsm', family: 'separability', compute: mdlsmCompute, definition: MDLSM_DEFINITION, label: 'κ', short: 'κ', legend: 'κ = MD-LSM separability, mean over class pairs', chart: { id: 'mdlsm', label: 'κ in-sample' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'mdlsm_heldout_kappa', source: 'mdlsm', family: 'separability', compute: mdlsmCompute, definition: `${MDLSM_DEFINITION}; directions fitted on another split`, label: 'κ held-out', short: 'κ held', legend: 'κ held = κ of directions fitted on another split', chart: { id: 'mdlsm', label: 'κ held-out' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'mdlsm_inseparable', source: 'mdlsm', family: 'separability', compute: mdlsmCompute, definition: `1 − ${MDLSM_DEFINITION}: share of cross-class point pairs misordered (in-sample)`, label: '1 − κ', chart: { id: 'mdlsm-inseparable', label: '1 − κ in-sample' }, better: 'lower', basis: 'sampled' }),
  row({ key: 'mdlsm_heldout_inseparable', source: 'mdlsm', family: 'separability', compute: mdlsmCompute, definition: `1 − held-out ${MDLSM_DEFINITION}: share of held-out cross-class point pairs misordered`, label: '1 − κ held-out', chart: { id: 'mdlsm-inseparable', label: '1 − κ held-out', dash: 'dashed' }, better: 'lower', basis: 'sampled' }),
  row({ key: 'mdlsm_null_inseparable', source: 'mdlsm', family: 'separability', compute: mdlsmCompute, definition: `1 − ${MDLSM_DEFINITION}; on permuted labels`, label: '1 − κ null', chart: { id: 'mdlsm-inseparable', label: '1 − κ null (permuted labels)', dash: 'dotted' }, better: 'none', basis: 'sampled' }),
  row({ key: 'mdlsm_null_kappa', source: 'mdlsm', family: 'separability', compute: mdlsmCompute, definition: `${MDLSM_DEFINITION}; on permuted labels`, label: 'κ null', short: 'κ null', legend: 'κ null = κ on permuted labels (chance level)', chart: { id: 'mdlsm', label: 'κ null (permuted labels)', dash: 'dotted' }, better: 'none', basis: 'sampled' }),
  row({ key: 'lp_separable_fraction', source: 'separable', family: 'separability', compute: separableCompute, definition: LP_DEFINITION, label: 'LP separable', short: 'LP sep', legend: 'LP sep = share of class pairs the LP proves linearly separable', chart: { id: 'lp', label: 'LP separable' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'baseline_width_ratio', source: 'baseline', family: 'baseline', definition: 'layer width D over the width D*(r̂) a random layer needs to separate classes of the estimated intrinsic rank r̂', label: 'D/D*', short: 'D/D*', legend: 'D/D* = layer width over the width theory needs for separability', chart: { id: 'width-ratio', label: 'D/D*' }, better: 'none', basis: 'sampled' }),
  row({ key: 'baseline_probe_heldout_accuracy', source: 'baseline', family: 'baseline', needs: 'probe', definition: 'held-out linear probe accuracy on a random Gaussian layer of the same width and activation, on the same input', label: 'random layer: probe held-out', short: 'rand probe', legend: 'rand probe = probe on a random Gaussian layer of the same width', chart: { id: 'probe', label: 'random layer: held-out', dash: 'dashed' }, better: 'none', basis: 'sampled' }),
  row({ key: 'excess_probe_heldout_accuracy', source: 'baseline', family: 'baseline', needs: 'probe', definition: 'trained − random-layer held-out probe accuracy', label: 'excess probe held-out', short: 'Δprobe', legend: 'Δprobe = trained − random-layer probe (same rows and protocol)', chart: { id: 'excess', label: 'excess probe held-out' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'baseline_mdlsm_heldout_kappa', source: 'baseline', family: 'baseline', needs: 'mdlsm', definition: 'held-out MD-LSM κ on a random Gaussian layer of the same width and activation, on the same input', label: 'random layer: κ held-out', short: 'rand κ', legend: 'rand κ = κ held on that random layer', chart: { id: 'mdlsm', label: 'random layer: κ held-out', dash: 'dashed' }, better: 'none', basis: 'sampled' }),
  row({ key: 'excess_mdlsm_heldout_kappa', source: 'baseline', family: 'baseline', needs: 'mdlsm', definition: 'trained − random-layer held-out MD-LSM κ', label: 'excess κ held-out', short: 'Δκ held', legend: 'Δκ held = trained − random-layer held-out κ', chart: { id: 'excess', label: 'excess κ held-out', dash: 'dashed' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'baseline_compression', source: 'baseline', family: 'baseline', needs: 'geometry', definition: 'compression C of random Gaussian layers of the same width and activation on the same input (mean over draws)', label: 'random layer: C', chart: { id: 'compression', label: 'random layer: C', dash: 'dashed' }, better: 'none', basis: 'sampled' }),
  row({ key: 'excess_compression', source: 'baseline', family: 'baseline', needs: 'geometry', definition: 'trained − random-layer compression C on the same buffered rows', label: 'excess C', short: 'ΔC', legend: 'ΔC = trained − random-layer C (below 0: training compressed more)', chart: { id: 'excess-geometry', label: 'C reduction (random − trained)', flip: true }, better: 'lower', basis: 'sampled' }),
  row({ key: 'baseline_discrimination', source: 'baseline', family: 'baseline', needs: 'geometry', definition: 'discrimination D of random Gaussian layers of the same width and activation on the same input (mean over draws)', label: 'random layer: D', chart: { id: 'discrimination', label: 'random layer: D', dash: 'dashed' }, better: 'none', basis: 'sampled' }),
  row({ key: 'excess_discrimination', source: 'baseline', family: 'baseline', needs: 'geometry', definition: 'trained − random-layer discrimination D on the same buffered rows', label: 'excess D', short: 'ΔD', legend: 'ΔD = trained − random-layer D', chart: { id: 'excess-geometry', label: 'excess D', dash: 'dashed' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'baseline_mdlsm_heldout_inseparable', source: 'baseline', family: 'baseline', needs: 'mdlsm', definition: 'held-out 1 − κ on random Gaussian layers of the same width and activation (mean over draws)', label: 'random layer: 1 − κ held-out', chart: { id: 'mdlsm-inseparable', label: 'random layer: 1 − κ held-out', dash: 'dashed' }, better: 'none', basis: 'sampled' }),
  row({ key: 'excess_mdlsm_heldout_inseparable', source: 'baseline', family: 'baseline', needs: 'mdlsm', definition: 'trained − random-layer held-out 1 − κ', label: 'excess 1 − κ held-out', chart: false, better: 'lower', basis: 'sampled' }),
  row({ key: 'baseline_lp_separable_fraction', source: 'baseline', family: 'baseline', needs: 'separable', definition: 'LP-separable fraction of class pairs on random Gaussian layers of the same width and activation (mean over draws)', label: 'random layer: LP separable', chart: { id: 'lp', label: 'random layer: LP separable', dash: 'dashed' }, better: 'none', basis: 'sampled' }),
  row({ key: 'excess_lp_separable_fraction', source: 'baseline', family: 'baseline', needs: 'separable', definition: 'trained − random-layer LP-separable fraction', label: 'excess LP separable', short: 'ΔLP', legend: 'ΔLP = trained − random-layer LP-separable fraction', chart: { id: 'excess', label: 'excess LP separable', dash: 'dotted' }, better: 'higher', basis: 'sampled' }),
  row({ key: 'cka', source: 'compare', family: 'similarity', definition: 'linear CKA between two layers’ features on the same images (Kornblith et al. 2019); debiased: unbiased HSIC', label: 'CKA', better: 'none', basis: 'sampled' }),
];

/** The keys a gate may name besides the catalogue's: the model's own accuracy at its output. */
export const OUTPUT_METRICS = ['accuracy'] as const;

/** All rows, in catalogue order (registered rows after the built-in ones of their position). */
export function catalogRows(): readonly MetricRow[] {
  return ROWS;
}

/** The row of a report key (`get_scorer(name)`), or undefined for a key the catalogue lacks. */
export function metricRow(key: string): MetricRow | undefined {
  return ROWS.find((r) => r.key === key);
}

/** The rows a metric group computes per layer. */
export function groupRows(group: MetricGroup): MetricRow[] {
  return ROWS.filter((r) => r.source === group);
}

/**
 * Adds a metric: its row (with its compute function, unless it comes from the baseline or
 * compare). It is placed after the last row of its group, so a group's keys stay together.
 * Returns a function that removes it again (for tests).
 */
export function registerMetric(init: Omit<MetricRow, 'docs'> & { docs?: string }): () => void {
  if (metricRow(init.key)) throw new Error(`metric catalogue: key \`${init.key}\` is already registered`);
  if (!init.compute && init.source !== 'baseline' && init.source !== 'compare') throw new Error(`metric catalogue: \`${init.key}\` of group ${init.source} needs a compute function`);
  const r: MetricRow = { ...init, docs: init.docs ?? `docs/metrics/${init.family}.md#${init.key}` };
  let at = -1;
  ROWS.forEach((x, i) => {
    if (x.source === r.source) at = i;
  });
  ROWS.splice(at < 0 ? ROWS.length : at + 1, 0, r);
  return () => {
    const i = ROWS.indexOf(r);
    if (i >= 0) ROWS.splice(i, 1);
  };
}

/** One line for `--metrics` help: each group and the keys it reports. */
export function metricGroupsHelp(): string {
  return METRIC_GROUPS.map((g) => `${g} (${groupRows(g).map((r) => r.key).join(', ')})`).join('; ');
}
