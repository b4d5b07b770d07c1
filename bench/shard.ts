/**
 * Bench case: the cost of sharding (docs/distributed.md). The shipped Fashion-MNIST CNN audited
 * over Fashion-MNIST train (60,000 images; LAYERPROBE_BENCH_SHARD_IMAGES to change) as one
 * process, and as 4 shards run one after another (both phases) + the merges, in this process.
 * CPU time is process.cpuUsage (all threads, onnxruntime's included); process start-up per task
 * is not counted. Prints one JSON line: CPU and wall per way, the overhead, the largest relative
 * difference between the two reports, and the shard file size per 10,000 images.
 */
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { audit, type AuditOptions } from '../src/pipeline/audit.js';
import { auditShard } from '../src/pipeline/shard.js';
import { mergeShards } from '../src/pipeline/merge.js';
import type { Report } from '../src/report/schema.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const images = Number(process.env.LAYERPROBE_BENCH_SHARD_IMAGES ?? 60000);
const n = 4;
const dir = await mkdtemp(path.join(os.tmpdir(), 'lp-bench-shard-'));
const opts: AuditOptions = { models: [{ path: path.join(ROOT, 'models/fmnist-cnn/model.onnx') }], dataset: 'fashion-mnist:train', ...(images < 60000 ? { limit: images } : {}), force: true };

function measure<T>(f: () => Promise<T>): Promise<{ value: T; cpuS: number; wallS: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  return f().then((value) => {
    const c = process.cpuUsage(c0);
    return { value, cpuS: (c.user + c.system) / 1e6, wallS: (performance.now() - t0) / 1000 };
  });
}

const single = await measure(() => audit({ ...opts, out: path.join(dir, 'single') }));
const sharded = await measure(async () => {
  for (let i = 0; i < n; i++) await auditShard(opts, { shard: { index: i, count: n }, out: path.join(dir, 'p1') });
  const p1 = Array.from({ length: n }, (_, i) => path.join(dir, 'p1', `shard-${i}-of-${n}.lpshard`));
  const first = await mergeShards({ files: p1, out: path.join(dir, 'merged'), force: true });
  if (first.kind === 'run') return first.result.report;
  for (let i = 0; i < n; i++) await auditShard(opts, { shard: { index: i, count: n }, out: path.join(dir, 'p2'), means: first.file });
  const p2 = p1.map((f) => f.replace(`${path.sep}p1${path.sep}`, `${path.sep}p2${path.sep}`).replace('.lpshard', '.phase2.lpshard'));
  const second = await mergeShards({ files: [first.file, ...p2], out: path.join(dir, 'merged'), force: true });
  if (second.kind !== 'run') throw new Error('phase 2 merge did not write the run');
  return second.result.report;
});

let maxRel = 0;
const walk = (a: unknown, b: unknown, key: string): void => {
  // Wall-clock fields (timings, timingsMs, elapsedMs) differ run to run; they are not results.
  if (/^timings|elapsed/i.test(key) || key === 'createdAt' || key === 'command') return;
  if (typeof a === 'number' && typeof b === 'number' && a !== b) maxRel = Math.max(maxRel, Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b)));
  else if (a && b && typeof a === 'object' && typeof b === 'object') for (const k of Object.keys(a)) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], k);
};
walk(single.value.report as Report, sharded.value, '');
const sizes = async (d: string) => Promise.all((await readdir(d)).filter((f) => f.startsWith('shard-')).map(async (f) => (await stat(path.join(d, f))).size));
const p1 = await sizes(path.join(dir, 'p1'));
const p2 = await sizes(path.join(dir, 'p2')).catch(() => [0]);
const perShard = images / n;
process.stdout.write(
  JSON.stringify({
    case: `shipped CNN, ${images} Fashion-MNIST train: 1 process vs ${n} shards in sequence + merge`,
    singleCpuS: +single.cpuS.toFixed(1),
    singleWallS: +single.wallS.toFixed(1),
    shardedCpuS: +sharded.cpuS.toFixed(1),
    shardedWallS: +sharded.wallS.toFixed(1),
    extraCpuPercent: +((100 * (sharded.cpuS - single.cpuS)) / single.cpuS).toFixed(1),
    maxRelativeDifference: maxRel,
    phase1ShardMiBPer10kImages: +((Math.max(...p1) / 2 ** 20) * (10000 / perShard)).toFixed(2),
    phase1ShardMiB: +(Math.max(...p1) / 2 ** 20).toFixed(2),
    phase2ShardKiB: +(Math.max(...p2) / 1024).toFixed(1),
  }) + '\n',
);
