/**
 * The metrics of one layer, from its streaming statistics (exact) and its sample buffer
 * (probes, ranks, bootstraps). Which groups run is the caller's choice; each result carries
 * the SCIENCE.md definition it follows.
 */
import type { ClassStats } from '../stats/accumulator.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import type { MeanPassResult } from '../stats/mean-pass.js';
import { compression, discrimination } from '../metrics/geometry.js';
import { momentsNoScatter } from '../stats/moments.js';
import { cdnv, nc1, nc2, nc3, nc4 } from '../metrics/collapse.js';
import { rank } from '../metrics/rank.js';
import { linearProbe, type ProbeOptions } from '../metrics/probe.js';
import { bootstrapCis, excludesValue, rescaledInterval } from '../metrics/bootstrap.js';
import type { MetricResult } from '../metrics/types.js';
import { mdlsm, mdlsmMetrics, separabilityMatrix, separabilityMetrics } from '../metrics/separability/index.js';
import type { MetricGroup } from '../spec/probe-spec.js';

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

/**
 * Adds each metric group's wall time to `into` (milliseconds), so an audit can say where its
 * metric time goes.
 */
export type MetricTimings = Record<string, number>;

export async function computeLayerMetrics(stats: ClassStats, samples: SampleMatrix, opts: LayerMetricOptions, into: MetricTimings = {}): Promise<MetricResult[]> {
  const out: MetricResult[] = [];
  const want = new Set(opts.metrics);
  let mark = performance.now();
  const lap = (g: MetricGroup) => {
    const now = performance.now();
    into[g] = (into[g] ?? 0) + now - mark;
    mark = now;
  };
  if (want.has('geometry')) {
    const geometryOf = (m: SampleMatrix): number[] => {
      const mom = momentsNoScatter(m.X, m.n, m.d, m.labels, m.K);
      return [compression(mom).value, discrimination(mom).value];
    };
    out.push(...(await withCis([compression(stats), discrimination(stats)], geometryOf, samples, stats.N, opts)));
    lap('geometry');
  }
  if (want.has('collapse')) {
    out.push(await nc1(stats, samples, opts.meanPass ? { meanPass: opts.meanPass } : {}));
    out.push(...nc2(stats));
    if (opts.classifierWeights) out.push(nc3(stats, opts.classifierWeights));
    if (opts.hasPredictions && samples.predictions) out.push(await nc4(stats, samples, samples.predictions, opts.meanPass ? { meanPass: opts.meanPass } : {}));
    out.push(cdnv(stats));
    lap('collapse');
  }
  if (want.has('rank')) {
    out.push(...(await rank(samples, { population: stats.N })));
    lap('rank');
  }
  if (want.has('mdlsm')) {
    out.push(...mdlsmMetrics(await mdlsm(samples, { seed: opts.seed, maxDimFraction: AUDIT_MAX_DIM_FRACTION })));
    lap('mdlsm');
  }
  if (want.has('separable')) {
    out.push(...separabilityMetrics(await separabilityMatrix(samples, { seed: opts.seed, maxDimFraction: AUDIT_MAX_DIM_FRACTION })));
    lap('separable');
  }
  if (want.has('probe')) {
    const p = await linearProbe(opts.probeSamples ?? samples, { seed: opts.seed, ...(opts.probeLambda !== undefined ? { lambda: opts.probeLambda } : {}), ...opts.probe });
    out.push(...p.metrics);
    lap('probe');
  }
  return out;
}
