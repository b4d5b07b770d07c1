/**
 * deploy/: the shell scripts pass shellcheck and, run with a Slurm array's environment, carry a
 * sharded audit through both phases to the run folder; the Kubernetes manifests are valid against
 * the API types of the official Python client and agree with each other; the Dockerfile has the
 * structure docs/distributed.md promises (hadolint is not installable here: a structural check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from './helpers/fixtures.js';

const DEPLOY = path.join(ROOT, 'deploy');
const has = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
const SCRIPTS = ['kubernetes/run.sh', 'slurm/audit.sbatch', 'slurm/merge.sbatch', 'slurm/submit.sh'].map((f) => path.join(DEPLOY, f));

test('the deploy shell scripts pass shellcheck', { skip: !has('shellcheck', ['--version']) && 'shellcheck is not installed (apt-get install shellcheck)' }, () => {
  const r = spawnSync('shellcheck', ['--severity=style', ...SCRIPTS], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('the Kubernetes manifests are valid Jobs (python3-kubernetes API types) and agree on shards, means and paths', { skip: !has('/usr/bin/python3', ['-c', 'import kubernetes, yaml']) && 'python3-kubernetes is not installed' }, async () => {
  const files = ['audit-phase1.yaml', 'audit-phase2.yaml', 'merge.yaml'].map((f) => path.join(DEPLOY, 'kubernetes', f));
  const ok = spawnSync('/usr/bin/python3', [path.join(DEPLOY, 'kubernetes/validate.py'), ...files], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  // The validator can fail: an unknown field, a string count and a Job without containers.
  const dir = await tempDir();
  const bad = (await readFile(files[0]!, 'utf8')).replace('completionMode', 'completionMod').replace('parallelism: 4', 'parallelism: "4"').replace('      containers:', '      initContainers:');
  await writeFile(path.join(dir, 'bad.yaml'), bad);
  const no = spawnSync('/usr/bin/python3', [path.join(DEPLOY, 'kubernetes/validate.py'), path.join(dir, 'bad.yaml')], { encoding: 'utf8' });
  assert.equal(no.status, 1);
  assert.match(no.stdout, /completionMod: not a field of V1JobSpec/);
  assert.match(no.stdout, /parallelism: expected int/);
  assert.match(no.stdout, /containers/);
  const [p1, p2, merge] = await Promise.all(files.map((f) => readFile(f, 'utf8')));
  for (const p of [p1!, p2!]) {
    const completions = /completions: (\d+)/.exec(p)![1];
    assert.match(p, /completionMode: Indexed/);
    assert.match(p, new RegExp(`--shard-count=${completions}\\b`));
    assert.match(p, /--shard=env/);
    assert.match(merge!, new RegExp(`shard-\\*-of-${completions}\\.lpshard`));
  }
  // Phase 2 is phase 1 plus --means (the same options, or merge refuses the shards).
  const args = (y: string) => [...y.matchAll(/^\s+- (--[^\n]+)$/gm)].map((m) => m[1]!);
  assert.deepEqual(args(p2!).filter((a) => !a.startsWith('--means=')), args(p1!));
  assert.ok(args(p2!).includes('--means=/shared/shards/means.lpshard'));
  assert.match(merge!, /merge \/shared\/shards\/shard-\*-of-4\.lpshard --means \/shared\/shards\/means\.lpshard/);
  assert.match(merge!, /merge \/shared\/shards\/means\.lpshard \/shared\/shards\/shard-\*-of-4\.phase2\.lpshard/);
});

test('the Dockerfile: node 20 slim, the npm pack tarball installed at build time, no download at run time, non-root, layerprobe as entry point', async () => {
  const d = await readFile(path.join(DEPLOY, 'Dockerfile'), 'utf8');
  const lines = d.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));
  assert.match(lines[0]!, /^FROM node:20-slim$/);
  assert.match(d, /^COPY layerprobe-\*\.tgz \/tmp\/$/m);
  assert.match(d, /npm install --global --omit=dev \/tmp\/layerprobe-\*\.tgz/);
  assert.match(d, /^USER node$/m);
  assert.match(d, /^ENTRYPOINT \["layerprobe"\]$/m);
  // Every instruction is a known one, and nothing fetches at run time (no curl/wget, no npx).
  for (const l of lines.filter((x) => !/^\s/.test(x))) assert.match(l, /^(FROM|ENV|COPY|RUN|USER|WORKDIR|ENTRYPOINT|CMD) /, l);
  assert.doesNotMatch(d, /curl|wget|npx|ADD /);
  // The package name the COPY expects is the one npm pack writes.
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { name: string };
  assert.equal(pkg.name, 'layerprobe');
});

test('the Slurm scripts, run with an array task\'s environment, take a sharded audit through both phases to the run folder', async () => {
  const dir = await tempDir();
  const env = {
    ...process.env,
    CI: '1',
    LAYERPROBE: `${process.execPath} ${path.join(ROOT, 'bin/layerprobe.js')}`,
    LAYERPROBE_MODEL: path.join(ROOT, 'models/fmnist-cnn/model.onnx'),
    LAYERPROBE_DATASET: 'fashion-mnist',
    LAYERPROBE_AUDIT_ARGS: '--per-class 4 --metrics geometry,collapse',
    LAYERPROBE_SHARDS: path.join(dir, 'shards'),
    LAYERPROBE_RUN: path.join(dir, 'run'),
  };
  const sh = (script: string, args: string[], extra: Record<string, string> = {}) => {
    const r = spawnSync('bash', [path.join(DEPLOY, 'slurm', script), ...args], { env: { ...env, ...extra }, encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, `${script} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const task = (id: number) => ({ SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '2' });
  for (const id of [0, 1]) sh('audit.sbatch', ['1'], task(id));
  assert.match(sh('merge.sbatch', ['1', '2']), /phase 2 needed/);
  for (const id of [1, 0]) sh('audit.sbatch', ['2'], task(id));
  sh('merge.sbatch', ['2', '2']);
  assert.ok(existsSync(path.join(dir, 'run', 'report.json')));
  assert.deepEqual((await readdir(path.join(dir, 'shards'))).sort(), ['means.lpshard', 'shard-0-of-2.lpshard', 'shard-0-of-2.phase2.lpshard', 'shard-1-of-2.lpshard', 'shard-1-of-2.phase2.lpshard']);
});
