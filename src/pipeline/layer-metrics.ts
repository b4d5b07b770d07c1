/**
 * The metrics of one layer: a walk over the metric catalogue (src/metrics/catalog.ts) for the
 * selected groups, in COMPUTE_ORDER, from the layer's streaming statistics (exact) and its sample
 * buffer (probes, ranks, bootstraps). A compute that throws does not end the run: each key it
 * would have produced is reported as failed with the reason (value NaN, `failed` set), and every
 * other metric is still computed.
 */
import type { ClassStats } from '../stats/accumulator.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import type { MetricResult } from '../metrics/types.js';
import { catalogRows, COMPUTE_ORDER, type LayerInputs, type LayerMetricOptions, type MetricCompute, type MetricGroup, type MetricRow, type MetricSource } from '../metrics/catalog.js';
import { errorMessage } from '../errors.js';

export { AUDIT_MAX_DIM_FRACTION, type LayerMetricOptions } from '../metrics/catalog.js';

/**
 * Adds each metric group's wall time to `into` (milliseconds), so an audit can say where its
 * metric time goes.
 */
export type MetricTimings = Record<string, number>;

/**
 * Where a value was not computed exactly over all N images, say so: a sampled row computed on a
 * buffer smaller than N gets `basis` (unless its function already set one), as does a value whose
 * detail says it was estimated from the buffer.
 */
function withBasis(r: MetricResult, row: MetricRow | undefined, samples: SampleMatrix, N: number): MetricResult {
  if (r.basis) return r;
  const fromBuffer = row?.basis === 'sampled' || r.detail?.source === 'sample-buffer';
  if (!fromBuffer || samples.n >= N) return r;
  return { ...r, basis: { n: samples.n, sampled: true } };
}

/**
 * The failed cells of every key a source would have produced (for the random-layer baseline:
 * the keys whose group, if any, is selected), each carrying the one-line reason.
 */
export function failedCells(source: MetricSource, groups: readonly MetricGroup[], e: unknown): MetricResult[] {
  const reason = errorMessage(e).split('\n')[0]!;
  return catalogRows()
    .filter((r) => r.source === source && (!r.needs || groups.includes(r.needs)))
    .map((r) => ({ name: r.key, value: NaN, definition: r.definition, failed: reason }));
}

/** The metric groups a layer's metrics are computed in, in order: one progress step each. */
export function layerMetricGroups(metrics: readonly MetricGroup[]): MetricGroup[] {
  return COMPUTE_ORDER.filter((g) => metrics.includes(g));
}

/**
 * `onGroup` is called once per group of layerMetricGroups(opts.metrics), after that group's
 * computes ran (or were skipped), so a progress bar can count layer × group steps.
 */
export async function computeLayerMetrics(stats: ClassStats, samples: SampleMatrix, opts: LayerMetricOptions, into: MetricTimings = {}, onGroup?: (group: MetricGroup) => void): Promise<MetricResult[]> {
  const out: MetricResult[] = [];
  const input: LayerInputs = { stats, samples, opts };
  const groups = layerMetricGroups(opts.metrics);
  const rows = groups.flatMap((g) => catalogRows().filter((r) => r.source === g && r.compute));
  const done = new Set<MetricCompute>();
  let current: MetricGroup | undefined;
  for (const row of rows) {
    const group = row.source as MetricGroup;
    if (onGroup && current !== undefined && group !== current) for (const g of groups.slice(groups.indexOf(current), groups.indexOf(group))) onGroup(g);
    current = group;
    const compute = row.compute!;
    if (done.has(compute)) continue;
    done.add(compute);
    if (compute.applies && !compute.applies(input)) continue;
    const start = performance.now();
    try {
      for (const r of await compute.run(input)) out.push(withBasis(r, rows.find((x) => x.key === r.name), samples, stats.N));
    } catch (e) {
      const reason = errorMessage(e).split('\n')[0]!;
      for (const k of rows.filter((x) => x.compute === compute)) out.push({ name: k.key, value: NaN, definition: k.definition, failed: reason });
    }
    into[group] = (into[group] ?? 0) + performance.now() - start;
  }
  // The groups not yet reported: the last one computed, and any after it without a compute.
  if (onGroup) for (const g of groups.slice(current === undefined ? 0 : groups.indexOf(current))) onGroup(g);
  return out;
}
