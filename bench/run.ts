/**
 * `npm run bench`: throughput, the split of time between model forward and the rest, and peak
 * memory. Each case runs in a fresh process; the same case at two dataset sizes shows whether
 * memory grows with the number of images. Results print as tables and go to bench/results.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable } from '../src/report/table.js';
import { writeBenchCnn, writeBenchMlp } from './models.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SHARED = path.resolve(ROOT, '../shared/assets');
const FMNIST = '/usr/share/datasets/fashion-mnist';
const tmp = path.join(os.tmpdir(), 'layerprobe-bench');
const only = process.argv[2];

interface Row {
  name: string;
  group: string;
  kind: string;
  images: number;
  layers: number;
  wallMs: number;
  forwardMs: number;
  reduceMs: number;
  writeMs?: number;
  statsMs?: number;
  metricsMs?: number;
  imagesPerSecond: number;
  peakRssMiB: number;
}

function runNode(args: string[]): string | null {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    process.stderr.write(`failed: ${args.join(' ')}\n${r.stderr}\n`);
    return null;
  }
  return r.stdout.trim().split('\n').pop() ?? null;
}

function runCase(name: string, group: string, kind: 'extract' | 'audit', options: Record<string, unknown>): Row | null {
  const line = runNode([path.join(ROOT, 'bench/child.ts'), JSON.stringify({ kind, options })]);
  if (!line) return null;
  const row = { name, group, kind, ...(JSON.parse(line) as Omit<Row, 'name' | 'group' | 'kind'>) };
  process.stderr.write(`${name}: ${row.imagesPerSecond.toFixed(0)} img/s, peak RSS ${row.peakRssMiB.toFixed(0)} MiB\n`);
  return row;
}

await mkdir(tmp, { recursive: true });
const cases: [string, string, 'extract' | 'audit', Record<string, unknown>][] = [];
const deepEverest = path.join(SHARED, 'models/mnist-cnn-deepeverest.onnx');
const mnist = path.join(SHARED, 'data/mnist/t10k-images-idx3-ubyte.gz');
const lenet = path.join(SHARED, 'models/lenet-keras-layers/model.json');
if (existsSync(deepEverest) && existsSync(mnist)) {
  for (const limit of [2000, 10000]) cases.push([`DeepEverest CNN, all layers, ${limit} MNIST`, 'extract DeepEverest', 'extract', { model: deepEverest, dataset: mnist, layers: 'all', limit, out: path.join(tmp, 'de') }]);
}
if (existsSync(lenet) && existsSync(mnist)) {
  for (const limit of [2000, 10000]) cases.push([`TF.js LeNet (keras), all layers, ${limit} MNIST`, 'extract LeNet', 'extract', { model: lenet, dataset: mnist, layers: 'all', limit, out: path.join(tmp, 'lenet') }]);
}
if (existsSync(FMNIST)) {
  const mlp = path.join(tmp, 'mlp-4x512.onnx');
  const cnn = path.join(tmp, 'cnn-small.onnx');
  await writeBenchMlp(mlp);
  await writeBenchCnn(cnn);
  for (const limit of [10000, 60000]) {
    cases.push([`4×512 MLP, full audit, ${limit} Fashion-MNIST`, 'audit MLP', 'audit', { models: [{ path: mlp }], dataset: 'fashion-mnist:train', limit, metrics: ['geometry', 'collapse', 'rank', 'probe'], out: path.join(tmp, 'a-mlp') }]);
    cases.push([`small CNN, full audit, ${limit} Fashion-MNIST`, 'audit CNN', 'audit', { models: [{ path: cnn }], dataset: 'fashion-mnist:train', limit, metrics: ['geometry', 'collapse', 'rank', 'probe'], out: path.join(tmp, 'a-cnn') }]);
  }
}
if (cases.length === 0) process.stderr.write('bench: no benchmark inputs found (needs ../shared/assets or the dataset-fashion-mnist package)\n');

const rows: Row[] = [];
for (const [name, group, kind, options] of cases) {
  if (only && !name.toLowerCase().includes(only.toLowerCase())) continue;
  const row = runCase(name, group, kind, options);
  if (row) rows.push(row);
}

const s = (ms: number | undefined) => (ms === undefined ? '' : (ms / 1000).toFixed(2));
for (const kind of ['extract', 'audit']) {
  const rs = rows.filter((r) => r.kind === kind);
  if (!rs.length) continue;
  const extra = kind === 'extract' ? ['write s'] : ['stats s', 'metrics s', 'metrics/forward'];
  process.stdout.write(
    `\n${kind}\n` +
      formatTable(
        ['case', 'images', 'layers', 'img/s', 'forward s', 'reduce s', ...extra, 'wall s', 'peak RSS MiB'],
        rs.map((r) => [
          r.name,
          String(r.images),
          String(r.layers),
          r.imagesPerSecond.toFixed(0),
          s(r.forwardMs),
          s(r.reduceMs),
          ...(kind === 'extract' ? [s(r.writeMs)] : [s(r.statsMs), s(r.metricsMs), ((r.metricsMs ?? 0) / r.forwardMs).toFixed(1)]),
          s(r.wallMs),
          r.peakRssMiB.toFixed(0),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ) +
      '\n',
  );
}
for (const r of rows.filter((x) => x.kind === 'audit')) {
  const split = Object.entries(r)
    .filter(([k]) => k.startsWith('metric_'))
    .map(([k, v]) => `${k.slice(7, -3)} ${((v as number) / 1000).toFixed(2)} s`);
  if (split.length) process.stdout.write(`metrics of ${r.name}: ${split.join(', ')}\n`);
}
for (const group of new Set(rows.map((r) => r.group))) {
  const rs = rows.filter((r) => r.group === group).sort((a, b) => a.images - b.images);
  if (rs.length < 2) continue;
  const [a, b] = [rs[0]!, rs[rs.length - 1]!];
  process.stdout.write(`peak RSS ratio ${group}, ${b.images} vs ${a.images} images: ${(b.peakRssMiB / a.peakRssMiB).toFixed(2)}\n`);
}

const extras: Record<string, unknown>[] = [];
for (const [file, key] of [['bench/separability.ts', 'separability mdlsm'], ['bench/theory.ts', 'theory phase'], ['bench/shard.ts', 'shard merge'], ['bench/shipped-cnn-audit.ts', 'shipped cnn audit'], ['bench/baseline.ts', 'baseline random-layer'], ['bench/package-size.ts', 'package size'], ['bench/onnx-forward.ts', 'onnx forward vs logits'], ['bench/mobilenet-224.ts', 'mobilenet 224 engines']] as const) {
  if (!existsSync(path.join(ROOT, file)) || (only && !key.includes(only.toLowerCase()))) continue;
  const line = runNode([path.join(ROOT, file)]);
  if (line) {
    extras.push(JSON.parse(line) as Record<string, unknown>);
    process.stdout.write(`\n${key}: ${line}\n`);
  }
}
await writeFile(path.join(ROOT, 'bench/results.json'), JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, rows, extras }, null, 2) + '\n');
