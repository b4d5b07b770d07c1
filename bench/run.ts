/**
 * `npm run bench`: throughput and peak memory of the data path. Each case runs in a fresh
 * process; memory is compared across dataset sizes to show it does not grow with the number of
 * images. Results print as a table and are written to bench/results.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable } from '../src/cli/table.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SHARED = path.resolve(ROOT, '../shared/assets');
const FMNIST = '/usr/share/datasets/fashion-mnist';
const tmp = path.join(os.tmpdir(), 'layerprobe-bench');

interface Row {
  name: string;
  images: number;
  layers: number;
  wallMs: number;
  forwardMs: number;
  reduceMs: number;
  writeMs: number;
  imagesPerSecond: number;
  peakRssMiB: number;
}

function runCase(name: string, kind: string, options: Record<string, unknown>): Row | null {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/child.ts'), JSON.stringify({ kind, options })], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) {
    process.stderr.write(`bench ${name} failed:\n${r.stderr}\n`);
    return null;
  }
  const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<Row, 'name'>;
  process.stderr.write(`${name}: ${row.imagesPerSecond.toFixed(0)} img/s, peak RSS ${row.peakRssMiB.toFixed(0)} MiB\n`);
  return { name, ...row };
}

const rows: Row[] = [];
const cases: [string, string, Record<string, unknown>][] = [];
const deepEverest = path.join(SHARED, 'models/mnist-cnn-deepeverest.onnx');
const mnist = path.join(SHARED, 'data/mnist/t10k-images-idx3-ubyte.gz');
const lenet = path.join(SHARED, 'models/lenet-keras-layers/model.json');
if (existsSync(deepEverest) && existsSync(mnist)) {
  for (const limit of [2000, 10000]) {
    cases.push([`extract DeepEverest CNN, all layers, ${limit} MNIST`, 'extract', { model: deepEverest, dataset: mnist, layers: 'all', limit, out: path.join(tmp, 'de') }]);
  }
}
if (existsSync(lenet) && existsSync(mnist)) {
  for (const limit of [2000, 10000]) {
    cases.push([`extract TF.js LeNet (keras), all layers, ${limit} MNIST`, 'extract', { model: lenet, dataset: mnist, layers: 'all', limit, out: path.join(tmp, 'lenet') }]);
  }
}
if (existsSync(deepEverest) && existsSync(FMNIST)) {
  for (const limit of [10000, 60000]) {
    cases.push([`extract DeepEverest CNN, default layers, ${limit} Fashion-MNIST train`, 'extract', { model: deepEverest, dataset: 'fashion-mnist:train', limit, out: path.join(tmp, 'de-f') }]);
  }
}
if (cases.length === 0) process.stderr.write('bench: no benchmark inputs found (needs ../shared/assets or the dataset-fashion-mnist package)\n');
for (const [name, kind, options] of cases) {
  const row = runCase(name, kind, options);
  if (row) rows.push(row);
}

const fmt = (v: number, d = 0) => v.toFixed(d);
process.stdout.write(
  formatTable(
    ['case', 'images', 'layers', 'img/s', 'forward s', 'reduce s', 'write s', 'wall s', 'peak RSS MiB'],
    rows.map((r) => [r.name, String(r.images), String(r.layers), fmt(r.imagesPerSecond), fmt(r.forwardMs / 1000, 2), fmt(r.reduceMs / 1000, 2), fmt(r.writeMs / 1000, 2), fmt(r.wallMs / 1000, 2), fmt(r.peakRssMiB)]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  ) + '\n',
);
// Memory must not grow with the number of images: compare the same model at two sizes.
const pairs = new Map<string, Row[]>();
for (const r of rows) {
  const key = r.name.replace(/\d+ (MNIST|Fashion)/, '$1');
  pairs.set(key, [...(pairs.get(key) ?? []), r]);
}
for (const [key, rs] of pairs) {
  if (rs.length < 2) continue;
  const [a, b] = [rs[0]!, rs[rs.length - 1]!];
  process.stdout.write(`RSS ratio ${b.images}/${a.images} images, ${key}: ${(b.peakRssMiB / a.peakRssMiB).toFixed(2)}\n`);
}
await writeFile(path.join(ROOT, 'bench/results.json'), JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, rows }, null, 2) + '\n');
