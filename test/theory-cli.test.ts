/**
 * `layerprobe theory …` end to end (a real child process per command, exit codes, files on
 * disk) and the per-class ranks of real data, checked against ml-matrix SVDs of the same items.
 * The commands run through a tiny yargs driver around `theoryCommand`, the same module the main
 * CLI mounts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import { openDataset } from '../src/data/open.js';
import { selectIndices } from '../src/data/sampling.js';
import { datasetClassRanks, energyRank } from '../src/theory/index.js';
import { FMNIST_SYSTEM, tempDir, writeIdxDataset } from './helpers/fixtures.js';
import { runTheory, type CliRun } from './helpers/theory-cli.js';

function theory(args: string[]): CliRun {
  return runTheory(args);
}

/** Energy ranks (centred, raw) of rows by ml-matrix SVD. */
function mlRanks(rows: number[][], energy = 0.95): { centred: number; raw: number } {
  const M = new Matrix(rows);
  const C = M.clone().subRowVector(M.mean('column'));
  const sv = (X: Matrix) => new SingularValueDecomposition(X, { computeLeftSingularVectors: false, computeRightSingularVectors: false, autoTranspose: true }).diagonal;
  return { centred: energyRank(sv(C), energy), raw: energyRank(sv(M), energy) };
}

test('theory uos --json: the θ-pair has every angle at θ and samples on their subspaces; --out writes .npy files', async () => {
  const dir = await tempDir();
  const out = path.join(dir, 'uos');
  const r = theory(['uos', '--ambient-dim', '20', '--intrinsic-dim', '3', '--angle', '30', '--n', '50', '--json', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const res = (JSON.parse(r.stdout) as { result: unknown }).result as { pairs: { anglesDeg: number[] }[]; maxResidual: number; d: number };
  assert.equal(res.pairs.length, 1);
  for (const a of res.pairs[0]!.anglesDeg) assert.ok(Math.abs(a - 30) < 1e-7, `${a}`);
  assert.ok(res.maxResidual < 1e-12);
  const X = await readFile(path.join(out, 'X.npy'));
  assert.equal(X.subarray(1, 6).toString('latin1'), 'NUMPY');
  assert.match(X.subarray(10, 128).toString('latin1'), /'shape': \(100, 20\)/);
  assert.ok(existsSync(path.join(out, 'labels.npy')) && existsSync(path.join(out, 'bases.npy')));
  // Never over an existing folder without --force (exit 2), fine with it.
  assert.equal(theory(['uos', '--out', out, '-q']).code, 2);
  // The folder is claimed before the work: a taken --out fails at once, not after the trials
  // (this grid would run for many minutes, past the driver's 120 s timeout).
  const taken = theory(['phase', '--intrinsic-dim', '2:12', '--trials', '200', '-o', out]);
  assert.equal(taken.code, 2);
  assert.match(taken.stderr, /already exists/);
  assert.equal(theory(['uos', '--out', out, '-q', '--force']).code, 0);
});

test('theory phase writes phase.json, phase.csv and an HTML heat map; stdout JSON matches the file', async () => {
  const dir = await tempDir();
  const out = path.join(dir, 'phase');
  const r = theory(['phase', '--vary', 'width,intrinsic', '--intrinsic-dim', '2,3', '--ambient-dim', '12', '--D', '2:14', '--trials', '4', '--json', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const res = (JSON.parse(r.stdout) as { result: unknown }).result as { columns: { r: number; dStar: number | null; probability: number[]; thresholds: number[] }[]; widths: number[]; fit: { slope: number } | null };
  const file = JSON.parse(await readFile(path.join(out, 'phase.json'), 'utf8')) as typeof res;
  assert.deepEqual(file.columns, res.columns);
  assert.deepEqual(res.widths, Array.from({ length: 13 }, (_, i) => i + 2));
  // P at each width is the share of trials whose threshold is at most that width.
  for (const c of res.columns) {
    res.widths.forEach((w, j) => assert.equal(c.probability[j], c.thresholds.filter((t) => t !== null && t <= w).length / 4));
  }
  const csv = (await readFile(path.join(out, 'phase.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv.length, 1 + 2 * 13);
  assert.equal(csv[0], 'value,r,d,angle_deg,width,p_separable,trials,d_star');
  const html = await readFile(path.join(out, 'phase.html'), 'utf8');
  assert.match(html, /<svg/);
  assert.match(html, /P\(separable\)/);
  assert.doesNotMatch(html, /<script/);
  // The same seed reproduces the run; the table mode prints D* and the slope.
  const again = theory(['phase', '--intrinsic-dim', '2,3', '--ambient-dim', '12', '--D', '2:14', '--trials', '4', '--out', path.join(dir, 'again')]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /slope of ln D\* on ln r/);
  const second = JSON.parse(await readFile(path.join(dir, 'again', 'phase.json'), 'utf8')) as typeof res;
  assert.deepEqual(second.columns, res.columns);
});

test('theory: usage errors exit 2 with one line', () => {
  for (const args of [
    ['phase', '--vary', 'width,colour', '--out', '/tmp/never'],
    ['phase', '--activation', 'sigmoid', '--out', '/tmp/never'],
    ['phase', '--vary', 'width,ambient', '--intrinsic-dim', '2,3', '--out', '/tmp/never'],
    ['phase', '--activation', 'relu', '--test', 'exact', '--intrinsic-dim', '2', '--D', '2:6', '--trials', '1', '--out', '/tmp/never'],
    ['phase', '--activation', 'relu', '--intrinsic-dim', '2', '--D', '2:30', '--samples-per-class', '10', '--trials', '1', '--out', '/tmp/never'],
  ]) {
    const r = theory(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync('/tmp/never'));
  }
});

test('per-class ranks: the d×d Gram path and the row path agree with ml-matrix', async () => {
  const dir = await tempDir();
  // 8×8 images, 3 classes × 100 items: 100 > 64 rows per class takes the streamed Gram path.
  const data = await writeIdxDataset(path.join(dir, 'data'), 300, 3);
  for (const perClass of [undefined, 40]) {
    const res = await datasetClassRanks({ dataset: data.images, ...(perClass ? { perClass } : {}), seed: 0 });
    const ds = await openDataset(data.images);
    const idx = selectIndices(ds.labels, 3, { ...(perClass ? { perClass } : {}), seed: 0 });
    for (const c of res.classes) {
      const rows = Array.from(idx)
        .filter((i) => data.y[i] === c.k)
        .map((i) => Array.from(data.pixels.subarray(i * 64, (i + 1) * 64), (v) => v / 255));
      assert.equal(c.n, rows.length);
      const ref = mlRanks(rows);
      assert.equal(c.rank, ref.centred, `class ${c.k} (perClass ${perClass}) centred`);
      assert.equal(c.rankUncentred, ref.raw, `class ${c.k} (perClass ${perClass}) raw`);
    }
  }
});

test('theory rank --dataset fashion-mnist prints per-class ranks computed from the data', { skip: !existsSync(FMNIST_SYSTEM) && 'no Fashion-MNIST at /usr/share/datasets' }, async () => {
  const r = theory(['rank', '--dataset', 'fashion-mnist', '--per-class', '150', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = (JSON.parse(r.stdout) as { result: unknown }).result as { classes: { k: number; name: string; n: number; rank: number; rankUncentred: number }[]; dimension: number };
  assert.equal(res.dimension, 784);
  assert.equal(res.classes.length, 10);
  console.log(`theory Fashion-MNIST test split, 150/class, 95%-energy rank centred (raw): ${res.classes.map((c) => `${c.name} ${c.rank} (${c.rankUncentred})`).join(', ')}`);
  // Two classes recomputed independently: the same items, ml-matrix SVD.
  const ds = await openDataset('fashion-mnist');
  const idx = selectIndices(ds.labels, 10, { perClass: 150, seed: 0 });
  for (const k of [1, 5]) {
    const mine = Array.from(idx).filter((i) => ds.labels[i] === k);
    const batch = await ds.read(mine);
    const rows = mine.map((_, t) => Array.from(batch.x.subarray(t * 784, (t + 1) * 784), (v) => v / 255));
    const ref = mlRanks(rows);
    const got = res.classes.find((c) => c.k === k)!;
    assert.equal(got.n, 150);
    assert.equal(got.rank, ref.centred, `class ${k} centred`);
    assert.equal(got.rankUncentred, ref.raw, `class ${k} raw`);
  }
  const table = theory(['rank', '--dataset', 'fashion-mnist', '--per-class', '20']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /Trouser/);
  // An empty sample is refused, named by its flag, not answered with an empty table.
  const zero = theory(['rank', '--dataset', 'fashion-mnist', '--per-class', '0']);
  assert.equal(zero.code, 2);
  assert.match(zero.stderr, /--per-class must be a positive integer \(got 0\)/);
  assert.equal(zero.stdout, '');
});
