import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { abortAllRunFolders, createRunFolder, writeFileAtomic } from '../src/report/run-folder.js';
import { UsageError } from '../src/errors.js';
import { tempDir } from './helpers/fixtures.js';

test('a committed run folder appears whole under its final name; an existing one needs force', async () => {
  const dir = await tempDir();
  const final = path.join(dir, 'run');
  const f = await createRunFolder(final);
  await writeFile(path.join(f.workDir, 'a.txt'), 'x');
  assert.deepEqual(await readdir(dir), [path.basename(f.workDir)]);
  await f.commit();
  assert.deepEqual(await readdir(dir), ['run']);
  assert.equal(await readFile(path.join(final, 'a.txt'), 'utf8'), 'x');
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
