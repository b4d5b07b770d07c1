/**
 * The fuzzer's fixed small budget inside `npm test` (the large one is `npm run fuzz`): a few
 * seeded mutants per format opened in-process, and the first of each through the real CLI.
 * Any defect (see test/fuzz/judge.ts) fails the test with the command that reproduces it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzz } from './fuzz/run.js';
import { FORMATS } from './fuzz/formats.js';

test('seeded mutation fuzz, small budget: every format, in-process and through the CLI, no defect', { timeout: 300_000 }, async () => {
  const lines: string[] = [];
  const summary = await runFuzz({ perFormat: 8, seed: 7, cliEvery: 8, limitSeconds: 40, formats: FORMATS, log: (l) => lines.push(l) });
  assert.deepEqual(summary.formats.map((f) => f.format), [...FORMATS]);
  for (const f of summary.formats) {
    assert.equal(f.mutants, 8, `${f.format}: every mutant ran`);
    assert.equal(f.cliRuns, 1, `${f.format}: one CLI run`);
  }
  assert.deepEqual(summary.defects, [], lines.join('\n'));
});
