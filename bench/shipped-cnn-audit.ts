/**
 * The shipped small CNN (models/fmnist-cnn) audited with the default metric groups (geometry,
 * collapse with exact NC1/NC4 from the second streaming pass, rank, and the cross-fitted probe on
 * up to 1,000 rows per class) on 2,000 and on all 10,000 Fashion-MNIST test images, each in its
 * own process (bench/child.ts). Reports the forward phase (both passes' model runs, reductions
 * and statistics) and the metric phase separately, and how each grows from 2,000 to 10,000
 * images: the metric phase must not grow more than the forward phase does. Prints one JSON line.
 *
 *   node --import tsx bench/shipped-cnn-audit.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const model = path.join(ROOT, 'models/fmnist-cnn/model.onnx');
if (!existsSync(model) || !existsSync(path.join(ROOT, 'datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'))) {
  process.stderr.write('shipped-cnn-audit: needs models/fmnist-cnn and datasets/fashion-mnist\n');
  process.exit(0);
}

interface Phase {
  images: number;
  forwardPhaseMs: number;
  metricPhaseMs: number;
  byGroupMs: Record<string, number>;
  wallMs: number;
  peakRssMiB: number;
}

function run(limit: number): Phase {
  const options = { models: [{ path: model }], dataset: 'fashion-mnist', ...(limit < 10000 ? { limit } : {}), out: path.join(os.tmpdir(), 'layerprobe-bench', `shipped-cnn-${limit}`) };
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/child.ts'), JSON.stringify({ kind: 'audit', options })], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`audit of ${limit} images failed: ${r.stderr}`);
  const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
  const byGroupMs = Object.fromEntries(Object.entries(row).filter(([k]) => k.startsWith('metric_')).map(([k, v]) => [k.slice(7, -3), Math.round(v)]));
  return {
    images: row.images!,
    forwardPhaseMs: Math.round(row.forwardMs! + row.reduceMs! + row.statsMs!),
    metricPhaseMs: Math.round(row.metricsMs!),
    byGroupMs,
    wallMs: Math.round(row.wallMs!),
    peakRssMiB: Math.round(row.peakRssMiB!),
  };
}

const small = run(2000);
const full = run(10000);
const forwardGrowth = full.forwardPhaseMs / small.forwardPhaseMs;
const metricGrowth = full.metricPhaseMs / small.metricPhaseMs;
process.stdout.write(
  JSON.stringify({
    case: 'shipped CNN audit (geometry, collapse exact NC1/NC4, rank, cross-fitted probe), Fashion-MNIST test',
    small,
    full,
    forwardGrowth: Number(forwardGrowth.toFixed(2)),
    metricGrowth: Number(metricGrowth.toFixed(2)),
    metricGrowsNoFasterThanForward: metricGrowth <= forwardGrowth,
  }) + '\n',
);
