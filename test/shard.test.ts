/**
 * Distributed audits (docs/distributed.md): shards written by separate processes and merged
 * equal one process — the full-data statistics to ≤ 1e-9 relative, the buffer-based metrics
 * exactly — for n = 1, 2, 3, 7 (uneven shards), any merge order, both phases; the shard slicing;
 * the environment of Kubernetes Indexed Jobs and Slurm arrays; every kind of bad input refused
 * with nothing written. On the shipped Fashion-MNIST CNN.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { audit, type AuditOptions } from '../src/pipeline/audit.js';
import { auditShard } from '../src/pipeline/shard.js';
import { mergeShards } from '../src/pipeline/merge.js';
import { parseShard, shardIndices } from '../src/data/shard.js';
import { decodeShard, encodeShard } from '../src/stats/shard-file.js';
import type { Report } from '../src/report/schema.js';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import { cli, ROOT, tempDir } from './helpers/fixtures.js';

const MODEL = path.join(ROOT, 'models/fmnist-cnn/model.onnx');
const MLP = path.join(ROOT, 'models/fmnist-mlp/model.onnx');
/** Metrics computed from the sample buffer (or counts): must be identical, not just close. */
const SAMPLED = /^(numerical_rank|effective_rank|probe_|nc4$)/;
// Wall-clock times (the run's, and the baseline's per-part and inset timings) differ between any two runs.
const SKIP = new Set(['timings', 'createdAt', 'command', 'timingsMs', 'elapsedMs']);

/**
 * Walks two reports: structure and strings equal, sampled metrics bit-identical, every other
 * number within `tol` relative. Returns the largest relative difference per path.
 */
function compareReports(single: Report, merged: Report, tol = 1e-9): Map<string, number> {
  const worst = new Map<string, number>();
  const walk = (a: unknown, b: unknown, where: string, exact: boolean): void => {
    if (typeof a === 'number' && typeof b === 'number') {
      const r = a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
      worst.set(where, Math.max(worst.get(where) ?? 0, r));
      assert.ok(exact ? a === b : r <= tol, `${where}: ${a} vs ${b} (${r.toExponential(2)} relative)`);
      return;
    }
    if (a && b && typeof a === 'object' && typeof b === 'object') {
      const ka = Object.keys(a).filter((k) => !SKIP.has(k)).sort();
      assert.deepEqual(Object.keys(b).filter((k) => !SKIP.has(k)).sort(), ka, `${where}: keys`);
      for (const k of ka) {
        const metric = where.endsWith('.metrics') ? k : '';
        walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], Array.isArray(a) ? `${where}[]` : `${where}.${k}`, exact || SAMPLED.test(metric));
      }
      return;
    }
    assert.deepEqual(b, a, where);
  };
  walk(single, merged, '', false);
  return worst;
}

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin/layerprobe.js'), ...args], { cwd: ROOT, env: { ...process.env, CI: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

const opts = (extra: Partial<AuditOptions> = {}): AuditOptions => ({ models: [{ path: MODEL }], dataset: 'fashion-mnist', perClass: 14, seed: 3, ...extra });

/** All shards of both phases in-process (the API the CLI calls), merged in the given order. */
async function sharded(dir: string, o: AuditOptions, n: number, order: number[]): Promise<Report> {
  for (const i of order) await auditShard(o, { shard: { index: i, count: n }, out: path.join(dir, 'p1') });
  const p1 = order.map((i) => path.join(dir, 'p1', `shard-${String(i).padStart(String(n - 1).length, '0')}-of-${n}.lpshard`));
  const first = await mergeShards({ files: p1, out: path.join(dir, 'run') });
  if (first.kind === 'run') return first.result.report;
  for (const i of order) await auditShard(o, { shard: { index: i, count: n }, out: path.join(dir, 'p2'), means: first.file });
  const p2 = order.map((i) => p1[order.indexOf(i)]!.replace('/p1/', '/p2/').replace('.lpshard', '.phase2.lpshard'));
  const second = await mergeShards({ files: [first.file, ...p2], out: path.join(dir, 'run') });
  assert.equal(second.kind, 'run');
  return (second as { kind: 'run'; result: { report: Report } }).result.report;
}

test('shardIndices: every selected index in exactly one shard, classes split evenly, independent of nothing but n', () => {
  const labels = Int32Array.from({ length: 1000 }, (_, i) => (i * 7919) % 10);
  const selection = Int32Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 3 !== 1);
  for (const n of [1, 2, 3, 7]) {
    const parts = Array.from({ length: n }, (_, i) => shardIndices(selection, labels, { index: i, count: n }));
    const all = parts.flatMap((p) => Array.from(p)).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from(selection));
    for (let k = 0; k < 10; k++) {
      const per = parts.map((p) => Array.from(p).filter((i) => labels[i] === k).length);
      assert.ok(Math.max(...per) - Math.min(...per) <= 1, `class ${k} split ${per}`);
    }
  }
});

test('--shard: i/n, i with --shard-count, env from a Kubernetes Indexed Job or a Slurm array; bad values are usage errors', () => {
  assert.deepEqual(parseShard('2/7', undefined, {}), { index: 2, count: 7 });
  assert.deepEqual(parseShard('2', 7, {}), { index: 2, count: 7 });
  assert.deepEqual(parseShard('env', 4, { JOB_COMPLETION_INDEX: '3' }), { index: 3, count: 4 });
  assert.deepEqual(parseShard('env', undefined, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '8' }), { index: 4, count: 8 });
  assert.deepEqual(parseShard('env', undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '2' }), { index: 0, count: 2 });
  for (const [t, c, env] of [['4/4', undefined, {}], ['1/0', undefined, {}], ['x', undefined, {}], ['2', undefined, {}], ['1/3', 4, {}], ['env', undefined, {}], ['env', undefined, { JOB_COMPLETION_INDEX: '1' }], ['env', 2, { JOB_COMPLETION_INDEX: '-1' }]] as const) {
    assert.throws(() => parseShard(t, c, env), UsageError, `${t} ${c} ${JSON.stringify(env)}`);
  }
});

test('n child processes (their index from the Slurm and Kubernetes environment), merged in scrambled order, equal one process', async () => {
  const dir = await tempDir();
  const base = ['audit', '-m', MODEL, '-d', 'fashion-mnist', '--per-class', '14', '--seed', '3', '-q', '--shard', 'env'];
  const n = 3;
  const env = (i: number): Record<string, string> => (i % 2 ? { SLURM_ARRAY_TASK_ID: String(i + 1), SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: String(n) } : { JOB_COMPLETION_INDEX: String(i) });
  const count = (i: number): string[] => (i % 2 ? [] : ['--shard-count', String(n)]);
  const p1 = await Promise.all([0, 1, 2].map((i) => run([...base, ...count(i), '--out', path.join(dir, 'p1')], env(i))));
  for (const r of p1) assert.equal(r.code, 0, r.stderr);
  const files1 = (await readdir(path.join(dir, 'p1'))).sort().reverse().map((f) => path.join(dir, 'p1', f));
  assert.equal(files1.length, 3);
  let r = cli(['merge', ...files1, '--out', path.join(dir, 'run')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /phase 2 needed/);
  assert.ok(!existsSync(path.join(dir, 'run')), 'no run folder before phase 2');
  const means = path.join(dir, 'p1', 'means.lpshard');
  const p2 = await Promise.all([0, 1, 2].map((i) => run([...base, ...count(i), '--means', means, '--out', path.join(dir, 'p2')], env(i))));
  for (const x of p2) assert.equal(x.code, 0, x.stderr);
  const files2 = (await readdir(path.join(dir, 'p2'))).map((f) => path.join(dir, 'p2', f));
  r = cli(['merge', files2[1]!, means, files2[2]!, files2[0]!, '--out', path.join(dir, 'run')]);
  assert.equal(r.code, 0, r.stderr);
  const one = cli([...base.slice(0, -2), '--out', path.join(dir, 'single')]);
  assert.equal(one.code, 0, one.stderr);
  const single = JSON.parse(await readFile(path.join(dir, 'single', 'report.json'), 'utf8')) as Report;
  const merged = JSON.parse(await readFile(path.join(dir, 'run', 'report.json'), 'utf8')) as Report;
  const worst = compareReports(single, merged);
  assert.ok(merged.models[0]!.layers.every((l) => l.samples.streamed === 140 && l.samples.buffered === single.models[0]!.layers[0]!.samples.buffered));
  for (const f of ['manifest.json', 'summary.txt', 'metrics.csv', 'report.html']) assert.ok(existsSync(path.join(dir, 'run', f)), f);
  process.stdout.write(`# max relative difference, 3 processes vs 1: ${Math.max(...worst.values()).toExponential(2)}\n`);
});

test('n = 1, 2 and 7 shards (uneven: 14 per class over 7 and 2; wide layer through phase 2) equal one process in any merge order', async () => {
  const wide = opts({ models: [{ path: MODEL, layers: ['pool_1', 'dense_1'], reduce: 'flatten' }], bufferPerClass: 6, baseline: 'random-layer' });
  const single = (await audit({ ...wide, out: path.join(await tempDir(), 'one') })).report;
  // pool_1 kept whole is 5,408 wide: no d×d scatter, so its NC1 comes from the second pass.
  assert.equal(single.models[0]!.layers[0]!.metrics.nc1!.detail!.source, 'second-pass');
  const stats: string[] = [];
  for (const [n, order] of [[1, [0]], [2, [1, 0]], [7, [3, 6, 0, 5, 1, 4, 2]]] as const) {
    const merged = await sharded(await tempDir(), wide, n, [...order]);
    const worst = compareReports(single, merged);
    stats.push(`n=${n}: ${Math.max(...worst.values()).toExponential(2)}`);
  }
  process.stdout.write(`# max relative difference vs one process: ${stats.join(', ')}\n`);
});

test('bad input: other models, data, options or versions; missing, duplicated, truncated or corrupt shards; each refused, nothing written', async () => {
  const dir = await tempDir();
  const o = opts({ perClass: 4, metrics: ['geometry'] });
  const write = async (name: string, extra: Partial<AuditOptions>, i: number, n = 2) =>
    (await auditShard({ ...o, ...extra }, { shard: { index: i, count: n }, out: path.join(dir, name, `s${i}.lpshard`) })).file;
  const a0 = await write('a', {}, 0);
  const a1 = await write('a', {}, 1);
  const out = path.join(dir, 'run');
  const refuse = async (files: string[], cls: typeof UsageError | typeof RuntimeFailure, re: RegExp) => {
    await assert.rejects(mergeShards({ files, out }), (e: unknown) => e instanceof cls && re.test((e as Error).message), `${re}`);
    assert.ok(!existsSync(out), 'nothing written');
  };
  await refuse([a0, await write('mlp', { models: [{ path: MLP }] }, 1)], UsageError, /different audits: they differ in their models/);
  await refuse([a0, await write('data', { perClass: 5 }, 1)], UsageError, /differ in their data/);
  await refuse([a0, await write('opt', { bufferPerClass: 7 }, 1)], UsageError, /differ in their audit options/);
  await refuse([a0], UsageError, /missing shard 1\/2 \(1 of 2 given\)/);
  await refuse([a0, a1, await write('dup', {}, 1)], UsageError, /duplicated shard: 1\/2 given 2 times/);
  await refuse([a0, await write('three', {}, 1, 3)], UsageError, /splits into 2 and 3 tasks/);
  // Another layerprobe version in the run identity (header and body checks pass: re-encoded).
  const body = decodeShard(await readFile(a1), a1);
  const versions = body.run.versions as Record<string, string>;
  const other = path.join(dir, 'ver.lpshard');
  await writeFile(other, encodeShard({ ...body, run: { ...body.run, versions: { ...versions, layerprobe: '0.0.1' } }, fingerprint: 'x'.repeat(64) }));
  await refuse([a0, other], UsageError, /differ in their layerprobe or library versions/);
  // Another shard-format version: refused by its header.
  const raw = gunzipSync(await readFile(a1)).toString('utf8');
  const { gzipSync } = await import('node:zlib');
  await writeFile(other, gzipSync(raw.replace('"version":1', '"version":2')));
  await refuse([a0, other], UsageError, /version-2 statistics shard; this layerprobe reads version 1/);
  const bytes = await readFile(a1);
  await writeFile(other, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await refuse([a0, other], RuntimeFailure, /ver\.lpshard is truncated or corrupt/);
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
  await writeFile(other, flipped);
  await refuse([a0, other], RuntimeFailure, /ver\.lpshard is truncated or corrupt/);
  await writeFile(other, '{"not": "a shard"}');
  await refuse([a0, other], RuntimeFailure, /truncated or corrupt/);
  // The body altered consistently (valid sha256) but covering other images than its shard.
  const moved = decodeShard(bytes, a1);
  await writeFile(other, encodeShard({ ...moved, indices: decodeShard(await readFile(a0), a0).indices }));
  await refuse([a0, other], UsageError, /image \d+ is in both/);
  // The CLI: exit codes 2 and 1, one line, no stack.
  const r2 = cli(['merge', a0, '--out', out]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /^layerprobe: error: missing shard 1\/2/);
  await writeFile(other, bytes.subarray(0, 100));
  const r1 = cli(['merge', a0, other, '--out', out]);
  assert.equal(r1.code, 1, r1.stderr);
  assert.match(r1.stderr, /truncated or corrupt/);
  assert.doesNotMatch(r1.stderr, /\n\s+at /);
  assert.ok(!existsSync(out));
  // A shard written twice is refused without --force; phase 2 against a means file of another run.
  await assert.rejects(auditShard(o, { shard: { index: 0, count: 2 }, out: a0 }), /already exists/);
  await assert.rejects(auditShard(o, { shard: { index: 0, count: 2 }, out: path.join(dir, 'x'), means: a1 }), /is a shard, not a means file/);
});

test('--execution-provider: one the installed onnxruntime does not offer is a usage error naming those it does', async () => {
  const r = cli(['audit', '-m', MODEL, '-d', 'fashion-mnist', '--per-class', '3', '-q', '--execution-provider', 'nope']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /execution provider `nope` is not offered by the installed onnxruntime-node; it offers cpu/);
  const ok = cli(['audit', '-m', MODEL, '-d', 'fashion-mnist', '--per-class', '3', '-q', '--metrics', 'geometry', '--execution-provider', 'cpu', '--out', path.join(await tempDir(), 'run')]);
  assert.equal(ok.code, 0, ok.stderr);
});
