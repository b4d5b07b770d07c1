/**
 * A probe spec as audit options: what `layerprobe audit spec.yaml` runs, for API users who hold a
 * spec (`audit(auditOptionsFromSpec(await loadProbeSpec(file)))`). The CLI starts from the same
 * options and lets its flags win.
 */
import type { ProbeSpec } from '../probe-spec/probe-spec.js';
import type { AuditOptions } from './audit.js';

export function auditOptionsFromSpec(spec: ProbeSpec): AuditOptions {
  const ds = spec.dataset;
  return {
    models: spec.models.map((m) => ({
      path: m.path,
      ...(m.name ? { name: m.name } : {}),
      preprocess: { ...(m.input ?? {}) },
      ...(m.layers ? { layers: m.layers } : {}),
      ...(m.reduce ? { reduce: m.reduce } : {}),
    })),
    dataset: ds.name,
    datasetOptions: { ...(ds.split ? { split: ds.split } : {}), ...(ds.labels ? { labels: ds.labels } : {}) },
    ...(ds.perClass !== undefined ? { perClass: ds.perClass } : {}),
    ...(ds.limit !== undefined ? { limit: ds.limit } : {}),
    ...(ds.seed !== undefined ? { seed: ds.seed } : {}),
    ...(spec.metrics ? { metrics: spec.metrics } : {}),
    ...(spec.reduce ? { reduce: spec.reduce } : {}),
    ...(spec.bufferPerClass !== undefined ? { bufferPerClass: spec.bufferPerClass } : {}),
    ...(spec.probePerClass !== undefined ? { probePerClass: spec.probePerClass } : {}),
    ...(spec.ci !== undefined ? { ci: spec.ci } : {}),
    ...(spec.baseline ? { baseline: spec.baseline } : {}),
    ...(spec.baselineDraws !== undefined ? { baselineDraws: spec.baselineDraws } : {}),
    ...(spec.baselineMetrics ? { baselineMetrics: spec.baselineMetrics } : {}),
    ...(spec.batchSize !== undefined ? { batchSize: spec.batchSize } : {}),
    ...(spec.name ? { name: spec.name } : {}),
  };
}
