/**
 * One benchmark case in its own process, so peak RSS belongs to that case alone.
 * argv: JSON of { kind: 'extract' | 'audit', options }.
 */
import { rm } from 'node:fs/promises';
import { extract, type ExtractOptions } from '../src/pipeline/extract.js';
import { audit, type AuditOptions } from '../src/pipeline/audit.js';

type Case = { kind: 'extract'; options: ExtractOptions } | { kind: 'audit'; options: AuditOptions };

const c = JSON.parse(process.argv[2] ?? '{}') as Case;
const t0 = performance.now();
let row: Record<string, number>;
if (c.kind === 'extract') {
  const result = await extract({ ...c.options, force: true });
  await rm(result.outDir, { recursive: true, force: true });
  row = {
    images: result.manifest.dataset.selectedItems,
    layers: result.manifest.models[0]!.layers.length,
    forwardMs: result.timings.forwardMs,
    reduceMs: result.timings.reduceMs,
    writeMs: result.timings.sinkMs,
  };
} else {
  const result = await audit({ ...c.options, force: true });
  await rm(result.outDir, { recursive: true, force: true });
  const t = result.report.models[0]!.timings;
  row = {
    images: result.report.dataset.selectedItems,
    layers: result.report.models[0]!.layers.length,
    forwardMs: t.forwardMs,
    reduceMs: t.reduceMs,
    statsMs: t.statsMs,
    metricsMs: t.metricsMs,
    ...Object.fromEntries(Object.entries(t.metricsByGroupMs ?? {}).map(([k, v]) => [`metric_${k}_ms`, v])),
  };
}
const wallMs = performance.now() - t0;
process.stdout.write(JSON.stringify({ ...row, wallMs, imagesPerSecond: row.images! / (wallMs / 1000), peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
