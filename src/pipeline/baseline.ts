/**
 * The audit's random-layer baseline (docs/metrics/baseline.md): for each measured layer, several
 * seeded random Gaussian layers of the same width and activation applied to the same input (the
 * previous measured layer's buffered features, or the model input for the first), measured with
 * the layer's own metrics on the same buffered rows. Each baseline metric is the mean over draws
 * with a t-interval (metrics/baseline/draws.ts); the excess (trained − random) carries the
 * interval shifted by the trained value, and is flagged "no better than random" unless that
 * interval lies wholly on the better side of 0. Beside them: the theory's prediction for the
 * layer (r̂ of its input, D*(r̂), D/D*, a verdict) and a small phase-transition inset.
 *
 * No extra pass over the model: everything is computed from the sample buffers the audit keeps.
 */
import type { Activation } from '../features/random-layer.js';
import { randomLayer } from '../features/random-layer.js';
import { deriveSeed } from '../util/seed.js';
import { linearProbe } from '../metrics/probe.js';
import { compression, discrimination } from '../metrics/geometry.js';
import { momentsNoScatter } from '../stats/moments.js';
import { mdlsm, separabilityMatrix } from '../metrics/separability/index.js';
import type { MetricResult } from '../metrics/types.js';
import { BASELINE_DEFINITION, classRankLadder, inputSubspaces, ladderEnergies } from '../metrics/baseline/input-subspaces.js';
import { DRAW_INTERVAL_METHOD, summariseDraws, type DrawSummary } from '../metrics/baseline/draws.js';
import { theoryVerdict, VERDICT_ENERGY, type RandomSeparation } from '../metrics/baseline/threshold.js';
import { phaseInset, type PhaseInset } from '../metrics/baseline/inset.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import { AUDIT_MAX_DIM_FRACTION } from './layer-metrics.js';

/** Default number of random layers drawn per measured layer. */
export const DEFAULT_BASELINE_DRAWS = 5;
/** Level of the interval over draws. */
export const BASELINE_LEVEL = 0.95;
/** The metric groups that have a random-layer counterpart. */
export const BASELINE_GROUPS: readonly MetricGroup[] = ['probe', 'geometry', 'mdlsm', 'separable'];
/** Stream tag of the baseline's layer seeds (kept apart from the split and probe seeds). */
const BASELINE_STREAM = 0xba5e;

/** The activation a random twin of this layer should use; ReLU when the op does not say. */
export function activationOf(op: string, activation?: string): Activation {
  const s = `${activation ?? ''} ${op}`.toLowerCase();
  if (s.includes('gelu')) return 'gelu';
  if (s.includes('leaky')) return 'leaky-relu';
  if (s.includes('elu') && !s.includes('relu')) return 'elu';
  if (s.includes('tanh')) return 'tanh';
  return 'relu';
}

export interface BaselineOptions {
  seed: number;
  /** Groups measured on the random layers (those of BASELINE_GROUPS; others are ignored). */
  groups: readonly MetricGroup[];
  /** Random layers per measured layer (≥ 1; an interval needs ≥ 2). */
  draws: number;
  probeLambda?: number;
  /** Phase insets already computed in this audit, by activation and r (they repeat across layers). */
  insetCache?: Map<string, Promise<PhaseInset | null>>;
  /** Per-class rank ladders already computed in this audit, by input content. */
  ladderCache?: Map<string, Promise<number[][]>>;
}

/**
 * Probe iterations on the random layers. Wide random ReLU layers of a narrow input never reach
 * the probe's gradient tolerance (the shipped CNN's 1600-wide twin of a 32-wide input ran to the
 * 300-iteration cap on every draw); at 100 iterations its held-out accuracies were 0.723/0.718
 * against 0.715/0.725 at 300, inside the spread over draws, at a third of the time. Layers whose
 * fit converges sooner (most) are not affected; detail.probeFits records each draw's status.
 */
export const BASELINE_PROBE_MAX_ITER = 100;

/** FNV-1a over the rows' bits, labels and shape: equal inputs (the model input across models) share a key. */
function contentKey(m: SampleMatrix): string {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h ^= v;
    h = Math.imul(h, 0x01000193);
  };
  const bits = new Uint32Array(m.X.buffer, m.X.byteOffset, m.X.length);
  for (let i = 0; i < bits.length; i++) mix(bits[i]!);
  for (let i = 0; i < m.labels.length; i++) mix(m.labels[i]!);
  return `${m.n}x${m.d}:${(h >>> 0).toString(16)}`;
}

/** Which way is better for each excess: 'higher' when trained above random means training added separation. */
type Better = 'higher' | 'lower';

interface Series {
  key: string;
  label: string;
  better: Better;
  values: number[];
  /** The trained layer's value the excess is taken from, and where it comes from. */
  trained?: { value: number; source: string };
  detail?: Record<string, unknown>;
}

/** Seed of draw j of the random layer (the same for every layer and run with the same base seed). */
export function baselineDrawSeed(seed: number, draw: number): number {
  return deriveSeed(seed, BASELINE_STREAM, draw);
}

function intervalRecord(s: DrawSummary): Record<string, unknown> {
  return { draws: s.n, values: s.values, sd: Number.isFinite(s.sd) ? s.sd : null, ciLevel: s.level, ciMethod: DRAW_INTERVAL_METHOD, ...(s.ci ? {} : { ciNote: `no interval: ${s.n} finite draw${s.n === 1 ? '' : 's'} (an interval needs 2)` }) };
}

export async function baselineMetrics(
  input: SampleMatrix,
  trainedSamples: SampleMatrix,
  width: number,
  activation: Activation,
  trained: readonly MetricResult[],
  opts: BaselineOptions,
): Promise<MetricResult[]> {
  const want = new Set(opts.groups.filter((g) => BASELINE_GROUPS.includes(g)));
  const draws = opts.draws;
  const get = (name: string) => {
    const v = trained.find((m) => m.name === name)?.value;
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  };
  const series: Series[] = [];
  const add = (s: Series) => {
    series.push(s);
    return s.values;
  };
  // The reported probe is cross-fitted on a larger sample; the random layers see only the buffered
  // rows. The excess compares like with like: the trained layer's probe with the random layers'
  // protocol (same rows, split, λ and iteration cap), so neither side gains from more data.
  const probeOpts = { seed: opts.seed, control: false, maxIter: BASELINE_PROBE_MAX_ITER, ...(opts.probeLambda !== undefined ? { lambda: opts.probeLambda } : {}) };
  const pairedProbe = want.has('probe') && get('probe_heldout_accuracy') !== undefined ? (await linearProbe(trainedSamples, probeOpts)).heldOutAccuracy : undefined;
  const probe = want.has('probe')
    ? add({
        key: 'probe_heldout_accuracy',
        label: 'held-out linear probe accuracy',
        better: 'higher',
        values: [],
        ...trainedFrom(pairedProbe, `the trained layer's probe with the random layers' protocol on the same ${trainedSamples.n} buffered rows (the reported probe_heldout_accuracy is cross-fitted on the probe's larger sample)`),
      })
    : null;
  let probeChance: number | undefined;
  const probeFits: { iterations: number; status: string }[] = [];
  let compressionV: number[] | null = null;
  let discriminationV: number[] | null = null;
  if (want.has('geometry')) {
    // The trained C and D of the report are exact over all images; the excess compares like with
    // like, so it takes the trained layer's values on the same buffered rows as the random layers.
    const mom = momentsNoScatter(trainedSamples.X, trainedSamples.n, trainedSamples.d, trainedSamples.labels, trainedSamples.K);
    const src = `the trained layer on the same ${trainedSamples.n} buffered rows (the reported value is over all images)`;
    compressionV = add({ key: 'compression', label: 'compression C', better: 'lower', values: [], trained: { value: compression(mom).value, source: src } });
    discriminationV = add({ key: 'discrimination', label: 'discrimination D', better: 'higher', values: [], trained: { value: discrimination(mom).value, source: src } });
  }
  let kappa: number[] | null = null;
  let inseparable: number[] | null = null;
  if (want.has('mdlsm')) {
    const tk = get('mdlsm_heldout_kappa');
    kappa = add({ key: 'mdlsm_heldout_kappa', label: 'held-out MD-LSM κ', better: 'higher', values: [], ...trainedFrom(tk, 'mdlsm_heldout_kappa') });
    inseparable = add({
      key: 'mdlsm_heldout_inseparable',
      label: 'held-out inseparable fraction 1 − κ',
      better: 'lower',
      values: [],
      ...trainedFrom(tk === undefined ? undefined : 1 - tk, '1 − mdlsm_heldout_kappa'),
    });
  }
  const lp = want.has('separable') ? add({ key: 'lp_separable_fraction', label: 'LP-separable fraction of class pairs', better: 'higher', values: [], ...trainedFrom(get('lp_separable_fraction'), 'lp_separable_fraction') }) : null;

  const ms: Record<string, number> = {};
  let mark = performance.now();
  const lap = (part: string) => {
    const now = performance.now();
    ms[part] = (ms[part] ?? 0) + now - mark;
    mark = now;
  };
  for (let j = 0; j < draws; j++) {
    const layer = randomLayer({ D: width, d: input.d, activation, seed: baselineDrawSeed(opts.seed, j) });
    const F = await layer.apply(input.X, input.n);
    const random: SampleMatrix = { X: F, n: input.n, d: width, K: input.K, labels: input.labels, ids: input.ids };
    lap('layer');
    if (probe) {
      const p = await linearProbe(random, probeOpts);
      probe.push(p.heldOutAccuracy);
      probeFits.push({ iterations: p.fit.iterations, status: p.fit.status });
      probeChance = p.chance;
      lap('probe');
    }
    if (compressionV && discriminationV) {
      const mom = momentsNoScatter(F, random.n, random.d, random.labels, random.K);
      compressionV.push(compression(mom).value);
      discriminationV.push(discrimination(mom).value);
      lap('geometry');
    }
    if (kappa && inseparable) {
      const k = await mdlsm(random, { seed: opts.seed, permutations: 0, maxDimFraction: AUDIT_MAX_DIM_FRACTION });
      const kh = k.heldOut?.mean ?? NaN;
      kappa.push(kh);
      inseparable.push(1 - kh);
      lap('mdlsm');
    }
    if (lp) {
      const s = await separabilityMatrix(random, { seed: opts.seed, maxDimFraction: AUDIT_MAX_DIM_FRACTION });
      lp.push(s.separableFraction ?? NaN);
      lap('separable');
    }
  }

  // The model input is the first layer's input in every model of an audit: its ranks are reused.
  const ladderCache = opts.ladderCache ?? new Map<string, Promise<number[][]>>();
  const key = contentKey(input);
  if (!ladderCache.has(key)) ladderCache.set(key, classRankLadder(input, ladderEnergies(VERDICT_ENERGY)).then((r) => r.ranks));
  const sub = await inputSubspaces(input, width, activation, VERDICT_ENERGY, { angles: false, ladder: await ladderCache.get(key)! });
  lap('inputRank');
  const summaries = new Map(series.map((s) => [s.key, summariseDraws(s.values, BASELINE_LEVEL)]));
  const mean = (key: string) => {
    const m = summaries.get(key)?.mean;
    return m !== undefined && Number.isFinite(m) ? m : undefined;
  };
  const random: RandomSeparation = {
    ...(mean('lp_separable_fraction') !== undefined ? { lpSeparableFraction: mean('lp_separable_fraction')! } : {}),
    ...(mean('mdlsm_heldout_kappa') !== undefined ? { heldoutKappa: mean('mdlsm_heldout_kappa')! } : {}),
    ...(mean('probe_heldout_accuracy') !== undefined ? { probeHeldoutAccuracy: mean('probe_heldout_accuracy')!, ...(probeChance !== undefined ? { probeChance } : {}) } : {}),
  };
  const verdict = theoryVerdict({ width, inputDim: input.d, activation, energy: VERDICT_ENERGY, levels: sub.levels, random });
  const cache = opts.insetCache ?? new Map<string, Promise<PhaseInset | null>>();
  const insetKey = `${activation}:${Math.min(sub.rHat, 4)}`;
  if (!cache.has(insetKey)) cache.set(insetKey, phaseInset({ activation, rHat: Math.min(sub.rHat, 4), seed: opts.seed }));
  const base = await cache.get(insetKey)!;
  lap('inset');
  const inset = base && sub.predictedThreshold !== null ? rescaleInset(base, sub.rHat, sub.predictedThreshold) : null;

  const common = { activation, width, inputDim: input.d, draws, seedStream: `deriveSeed(seed, 0x${BASELINE_STREAM.toString(16)}, draw)` };
  const def = `${BASELINE_DEFINITION}; ${draws} random twin${draws === 1 ? '' : 's'}: Gaussian W (${width}×${input.d}), ${activation}, applied to this layer's input (the previous measured layer's buffered features)`;
  const out: MetricResult[] = [
    {
      name: 'baseline_width_ratio',
      value: sub.widthRatio ?? NaN,
      definition: `${def}; width ratio D_l / D*(r̂) at ${Math.round(100 * VERDICT_ENERGY)}% energy`,
      detail: {
        ...common,
        perClassInputRank: sub.perClassRank,
        rHat: sub.rHat,
        energy: sub.energy,
        rHatEstimator: `largest per-class energy rank of the centred layer input at ${Math.round(100 * sub.energy)}% of Σσ² (as \`theory rank\`)`,
        rHatWhy:
          'the level of `theory rank` and of the union-of-subspaces paper, and the largest r̂ of the usual levels (a layer above threshold here is above it at every lower level); rHatByEnergy gives the other levels, and the verdict names the highest level at which the subspaces fit when 95% does not',
        rHatByEnergy: sub.levels,
        principalAnglesNote: 'principal angles between the class subspaces are not computed in the audit (ten times the cost of the ranks); the theory API randomLayerBaseline gives them',
        predictedThreshold: sub.predictedThreshold,
        verdict: verdict.kind,
        verdictText: verdict.text,
        ...(verdict.separatedBy ? { randomSeparatedBy: verdict.separatedBy } : {}),
        assumptions:
          'classes lie on r̂-dimensional subspaces of the layer input meeting only at 0 (r̂ from the centred classes); a random layer σ(Wx), W i.i.d. N(0,1), no bias; D*(r) = 1.25·r(r+1)/2 (quadratic), ×2 for ReLU-like; none for tanh',
        inset,
        timingsMs: ms,
      },
    },
  ];
  for (const s of series) {
    const sum = summaries.get(s.key)!;
    out.push({
      name: `baseline_${s.key}`,
      value: sum.mean,
      definition: `${def}; ${s.label}, mean over ${draws} draws${s.key === 'probe_heldout_accuracy' ? ` (probe fits stop at ${BASELINE_PROBE_MAX_ITER} L-BFGS iterations)` : ''}`,
      ...(sum.ci ? { ci: sum.ci } : {}),
      detail: { ...common, ...intervalRecord(sum), ...(s.key === 'probe_heldout_accuracy' ? { probeFits } : {}) },
    });
    if (!s.trained) continue;
    const T = s.trained.value;
    const ci: [number, number] | null = sum.ci ? [T - sum.ci[1], T - sum.ci[0]] : null;
    const better = ci ? (s.better === 'higher' ? ci[0] > 0 : ci[1] < 0) : null;
    out.push({
      name: `excess_${s.key}`,
      value: T - sum.mean,
      definition: `trained − random-layer ${s.label} (mean over ${draws} draws); interval: the draws' interval shifted by the trained value (random weights only, not image sampling); "no better than random" unless it lies wholly on the ${s.better === 'higher' ? 'positive' : 'negative'} side of 0`,
      ...(ci ? { ci } : {}),
      detail: {
        ...common,
        trained: T,
        trainedSource: s.trained.source,
        random: sum.mean,
        better: s.better,
        noBetterThanRandom: better === null ? null : !better,
        verdictText:
          better === null
            ? `no interval (${sum.n} draw${sum.n === 1 ? '' : 's'}): cannot tell whether training added anything beyond a random layer`
            : better
              ? `better than random: the interval ${fmtCi(ci!)} lies wholly on the ${s.better === 'higher' ? 'positive' : 'negative'} side of 0`
              : `no better than random: the interval ${fmtCi(ci!)} ${ci![0] <= 0 && ci![1] >= 0 ? 'contains 0' : 'lies on the worse side of 0'}`,
        ciLevel: sum.level,
        ciMethod: `${DRAW_INTERVAL_METHOD}, subtracted from the trained value`,
      },
    });
  }
  return out;
}

function trainedFrom(value: number | undefined, source: string): { trained?: { value: number; source: string } } {
  return value === undefined ? {} : { trained: { value, source } };
}

function fmtCi(ci: [number, number]): string {
  return `[${ci[0].toFixed(4)}, ${ci[1].toFixed(4)}]`;
}

/** The cached inset (computed at min(r̂, 4)) with the widths mapped to this layer's r̂. */
function rescaleInset(base: PhaseInset, rHat: number, dStarHat: number): PhaseInset {
  return {
    ...base,
    definition: base.r < rHat ? `${base.definition}; widths rescaled to r̂ = ${rHat} by D*(r̂)/D*(${base.r})` : base.definition,
    rHat,
    scaled: base.r < rHat,
    points: base.points.map((p) => ({ ...p, widthAtRHat: p.ratio * dStarHat })),
  };
}
