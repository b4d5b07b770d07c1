import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { abortAllRunFolders, createRunFolder, writeFileAtomic } from '../src/report/run-folder.js';
import { UsageError } from '../src/errors.js';
import { tempDir } from './helpers/fixtures.js';

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
