import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { abortAllRunFolders, createRunFolder, writeFileAtomic } from '../src/report/run-folder.js';
import { UsageError } from '../src/errors.js';
import { tempDir } from './helpers/fixtures.js';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSteps } from '../src/util/mkdir-steps.js';

test('a committed run folder appears whole under its final name; an existing one needs force', async () => {
  const dir = await tempDir();
  const final = path.join(dir, 'run');
  const f = await createRunFolder(final);
  await writeFile(path.join(f.workDir, 'manifest.json'), 'x');
  assert.deepEqual(await readdir(dir), [path.basename(f.workDir)]);
  await f.commit();
  assert.deepEqual(await readdir(dir), ['run']);
  assert.equal(await readFile(path.join(final, 'manifest.json'), 'utf8'), 'x');
  await assert.rejects(createRunFolder(final), UsageError);
  const g = await createRunFolder(final, { force: true });
  await writeFileAtomic(path.join(g.workDir, 'b.txt'), 'y');
  await g.commit();
  assert.deepEqual(await readdir(final), ['b.txt']);
});

test('a second abort-all waits for the removal the first one started', async () => {
  // The Ctrl-C handler starts the removal; the failing main flow then calls abort-all again and
  // exits as soon as it returns. If that second call did not wait, the process would exit with
  // the folder half removed (seen in CI as a leftover `.partial-…discard`).
  const dir = await tempDir();
  const f = await createRunFolder(path.join(dir, 'acts'));
  await Promise.all(Array.from({ length: 3000 }, (_, i) => writeFile(path.join(f.workDir, `f${i}.npy`), 'data')));
  const first = abortAllRunFolders();
  await abortAllRunFolders();
  assert.deepEqual(await readdir(dir), [], 'the second caller returned before the folder was gone');
  await first;
});

test('--force replaces an earlier output only: not the current folder, a file, a folder holding an input, or a foreign folder', async () => {
  const dir = await tempDir();
  const reject = (p: Promise<unknown>, re: RegExp) => assert.rejects(p, (e: unknown) => e instanceof UsageError && re.test(e.message));
  const here = process.cwd();
  process.chdir(dir);
  try {
    await reject(createRunFolder('.', { force: true }), /current folder/);
    await mkdir('sub');
    process.chdir('sub');
    await reject(createRunFolder('..', { force: true }), /current folder/);
  } finally {
    process.chdir(here);
  }
  await writeFile(path.join(dir, 'file.txt'), 'x');
  await reject(createRunFolder(path.join(dir, 'file.txt'), { force: true }), /is a file/);
  await mkdir(path.join(dir, 'models/m'), { recursive: true });
  await writeFile(path.join(dir, 'models/m/model.onnx'), 'x');
  await writeFile(path.join(dir, 'models/m/card.json'), '{}');
  await reject(createRunFolder(path.join(dir, 'models'), { force: true, inputs: [path.join(dir, 'models/m/model.onnx')] }), /holds .*model\.onnx, an input/);
  await mkdir(path.join(dir, 'photos'));
  await writeFile(path.join(dir, 'photos/cat.jpg'), 'x');
  await reject(createRunFolder(path.join(dir, 'photos'), { force: true }), /does not look like a layerprobe output/);
  assert.equal(await readFile(path.join(dir, 'photos/cat.jpg'), 'utf8'), 'x', 'nothing was removed');
  // An earlier output (it has a manifest) and an empty folder are replaced.
  await mkdir(path.join(dir, 'old'));
  await writeFile(path.join(dir, 'old/manifest.json'), '{}');
  const f = await createRunFolder(path.join(dir, 'old'), { force: true });
  await f.commit();
  assert.deepEqual(await readdir(path.join(dir, 'old')), []);
  await mkdir(path.join(dir, 'empty'));
  await (await createRunFolder(path.join(dir, 'empty'), { force: true })).commit();
});

test('a default name moves on to a free -2, -3 when taken, at the start or by the time the run commits', async () => {
  const dir = await tempDir();
  await mkdir(path.join(dir, 'run'));
  const f = await createRunFolder(path.join(dir, 'run'), { unique: true });
  assert.equal(f.finalDir, path.join(dir, 'run-2'));
  await mkdir(path.join(dir, 'run-2'));
  await writeFile(path.join(f.workDir, 'a'), 'x');
  assert.equal(await f.commit(), path.join(dir, 'run-3'));
  assert.equal(f.finalDir, path.join(dir, 'run-3'));
  assert.deepEqual(await readdir(path.join(dir, 'run-3')), ['a']);
});

test('an aborted run also removes the folders it created for itself (runs/), and only those', async () => {
  const dir = await tempDir();
  const f = await createRunFolder(path.join(dir, 'runs/deep/r1'));
  await f.abort();
  assert.deepEqual(await readdir(dir), []);
  await mkdir(path.join(dir, 'runs'));
  await writeFile(path.join(dir, 'runs/keep'), 'x');
  const g = await createRunFolder(path.join(dir, 'runs/deep/r2'));
  await g.abort();
  assert.deepEqual(await readdir(path.join(dir, 'runs')), ['keep']);
});

test('an output under /proc fails at once as "cannot write" (Node 20\'s recursive mkdir looped there forever)', { skip: process.platform !== 'linux' }, () => {
  const script = `import { createRunFolder } from ${JSON.stringify(path.resolve('src/report/run-folder.ts'))};
try { await createRunFolder('/proc/layerprobe-x/y'); console.log('created'); } catch (e) { console.log(e.constructor.name + ': ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, null, 'killed at the time limit: mkdir hung');
  assert.match(r.stdout, /^UsageError: cannot write to \/proc\/layerprobe-x: ENOENT/);
});

test('mkdirSteps makes each missing folder with a plain call and names the first one it cannot make', async () => {
  const dir = await tempDir();
  assert.equal(await mkdirSteps(path.join(dir, 'a/b/c')), path.join(dir, 'a'));
  assert.equal(await mkdirSteps(path.join(dir, 'a/b/c')), undefined);
  await writeFile(path.join(dir, 'file'), '');
  await assert.rejects(mkdirSteps(path.join(dir, 'file/sub')), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR');
});

test('hidden work folders of runs whose process is gone (kill -9) are swept by the next run there; live ones stay', async () => {
  const dir = await tempDir();
  // A pid that certainly existed and has certainly exited.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = path.join(dir, `.old.partial-${dead}`);
  const staleDiscard = path.join(dir, `.old.partial-${dead}.discard`);
  const alive = path.join(dir, `.other.partial-${process.ppid}`);
  for (const d of [stale, staleDiscard, alive]) {
    await mkdir(d);
    await writeFile(path.join(d, 'manifest.json'), '{}');
  }
  await writeFile(path.join(dir, `.notafolder.partial-${dead}`), 'a file is not ours to remove');
  const f = await createRunFolder(path.join(dir, 'run'));
  const left = (await readdir(dir)).sort();
  assert.deepEqual(left, [path.basename(alive), `.notafolder.partial-${dead}`, path.basename(f.workDir)].sort());
  await f.abort();
});

test('a kill -9 during a real audit leaves a work folder; the next run in that folder removes it', { timeout: 300_000 }, async () => {
  const dir = await tempDir();
  const out = path.join(dir, 'a');
  const child = spawn(process.execPath, ['bin/layerprobe.js', 'extract', '-m', 'models/fmnist-mlp/model.onnx', '-d', 'fashion-mnist', '--limit', '2000', '--seed', '1', '-o', out], { stdio: 'ignore', env: { ...process.env, CI: '1' } });
  // Kill as soon as the work folder exists.
  for (let i = 0; i < 600 && !(await readdir(dir)).some((n) => n.includes('.partial-')); i++) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGKILL');
  await once(child, 'exit');
  const before = (await readdir(dir)).filter((n) => n.includes('.partial-'));
  assert.equal(before.length, 1, 'the killed run left its work folder');
  const f = await createRunFolder(path.join(dir, 'b'));
  await f.abort();
  assert.deepEqual(await readdir(dir), []);
});
