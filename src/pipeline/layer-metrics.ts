/**
 * The metrics of one layer, from its streaming statistics (exact) and its sample buffer
 * (probes, ranks, bootstraps). Which groups run is the caller's choice; each result carries
 * the SCIENCE.md definition it follows.
 */
import type { ClassStats } from '../stats/accumulator.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { compression, discrimination } from '../metrics/geometry.js';
import { momentsNoScatter } from '../stats/moments.js';
import { cdnv, nc1, nc2, nc4 } from '../metrics/collapse.js';
import { rank } from '../metrics/rank.js';
import { linearProbe } from '../metrics/probe.js';
import { bootstrapCis } from '../metrics/bootstrap.js';
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
}

/**
 * Bootstrap intervals for results computed together from one resample (they share the work),
 * attached to each result; a result whose interval is undefined says so instead.
 */
async function withCis(results: MetricResult[], fn: (m: SampleMatrix) => number[], samples: SampleMatrix, opts: LayerMetricOptions): Promise<MetricResult[]> {
  if (opts.ci === undefined) return results;
  const bs = await bootstrapCis(fn, samples, { level: opts.ci, reps: opts.bootstrapReps ?? 200, seed: opts.seed });
  return results.map((r, k) => {
    const b = bs[k]!;
    const ciMethod = `percentile bootstrap over the ${samples.n} buffered samples, ${b.reps} stratified resamples, level ${b.level}`;
    const detail = { ...r.detail, ciMethod, ciFailedReplicates: b.failed };
    if (b.ci) {
      const outside = b.estimate < b.ci[0] || b.estimate > b.ci[1];
      const ciNote = 'the estimate lies outside its percentile interval: the statistic is biased on resamples of this size (for C, resampling inflates tr(Σ_B) by about tr(Σ_W)/n_k); read the interval as a spread, not as coverage';
      return { ...r, ci: b.ci, detail: outside ? { ...detail, ciNote } : detail };
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
    out.push(...(await withCis([compression(stats), discrimination(stats)], geometryOf, samples, opts)));
    lap('geometry');
  }
  if (want.has('collapse')) {
    out.push(await nc1(stats, samples));
    out.push(...nc2(stats));
    if (opts.hasPredictions && samples.predictions) out.push(await nc4(stats, samples, samples.predictions));
    out.push(cdnv(stats));
    lap('collapse');
  }
  if (want.has('rank')) {
    out.push(...(await rank(samples)));
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
    const p = await linearProbe(samples, { seed: opts.seed, ...(opts.probeLambda !== undefined ? { lambda: opts.probeLambda } : {}) });
    out.push(...p.metrics);
    lap('probe');
  }
  return out;
}
