/**
 * Benchmark of the random-layer baseline in the default main job (the zoo spec, docs/metrics/
 * baseline.md): the zoo audit with the baseline on (as shipped) and with `baseline: none`, one
 * after the other in this process, so that both see the same machine load. Prints one JSON line:
 * both wall times, their ratio, the baseline's share of the metric time, and its split by part
 * (random layers, probes, C/D, input ranks, phase insets) summed over every layer.
 *
 *   node --import tsx bench/baseline.ts
 */
import os from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { audit } from '../src/pipeline/audit.js';
import { auditOptionsFromSpec } from '../src/pipeline/from-spec.js';
import { loadProbeSpec } from '../src/probe-spec/probe-spec.js';

const spec = fileURLToPath(new URL('../probes/fmnist-zoo.yaml', import.meta.url));
const base = auditOptionsFromSpec(await loadProbeSpec(spec));

async function run(baseline: 'none' | 'random-layer') {
  const out = path.join(os.tmpdir(), `layerprobe-bench-baseline-${baseline}`);
  const t0 = performance.now();
  const res = await audit({ ...base, baseline, out, force: true });
  const wallMs = performance.now() - t0;
  await rm(res.outDir, { recursive: true, force: true });
  let metricsMs = 0;
  let baselineMs = 0;
  const parts: Record<string, number> = {};
  for (const m of res.report.models) {
    metricsMs += m.timings.metricsMs ?? 0;
    baselineMs += m.timings.metricsByGroupMs?.baseline ?? 0;
    for (const l of m.layers) {
      const t = (l.metrics.baseline_width_ratio?.detail as { timingsMs?: Record<string, number> } | undefined)?.timingsMs ?? {};
      for (const [k, v] of Object.entries(t)) parts[k] = (parts[k] ?? 0) + v;
    }
  }
  return { wallMs, metricsMs, baselineMs, parts };
}

const on = await run('random-layer');
const off = await run('none');
process.stdout.write(
  JSON.stringify({
    name: 'zoo audit, random-layer baseline on vs off',
    draws: base.baselineDraws ?? null,
    baselineMetrics: base.baselineMetrics ?? null,
    onMs: Math.round(on.wallMs),
    offMs: Math.round(off.wallMs),
    ratio: Number((on.wallMs / off.wallMs).toFixed(3)),
    baselineMs: Math.round(on.baselineMs),
    baselineShareOfWall: Number((on.baselineMs / on.wallMs).toFixed(3)),
    partsMs: Object.fromEntries(Object.entries(on.parts).map(([k, v]) => [k, Math.round(v)])),
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  }) + '\n',
);
