/**
 * Runs mutants of one format in-process, one after another, and reports each on stdout as an
 * `@@FUZZ {json}` line (other output, e.g. TF.js warnings, is ignored by the parent). The parent
 * watches the clock: a mutant that hangs or kills this process is blamed by its `start` line.
 * Usage: worker.ts <format> <seed> <from> <to>
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FORMAT, mutant, writeCase, type FormatName } from './formats.js';
import { judgeThrown } from './judge.js';

const [format, seedText, fromText, toText] = process.argv.slice(2) as [FormatName, string, string, string];
const seed = Number(seedText);
const emit = (o: object): void => void process.stdout.write(`@@FUZZ ${JSON.stringify(o)}\n`);
const root = await mkdtemp(path.join(os.tmpdir(), `lp-fuzz-${format}-`));
try {
  for (let i = Number(fromText); i < Number(toText); i++) {
    const dir = path.join(root, String(i));
    await writeCase(dir, await mutant(format, seed, i));
    emit({ start: i });
    const t0 = performance.now();
    let verdict;
    try {
      await FORMAT[format].open(dir);
      verdict = { defect: false, outcome: 'ok' };
    } catch (e) {
      verdict = judgeThrown(e);
    }
    emit({ index: i, ms: performance.now() - t0, maxRssKb: process.resourceUsage().maxRSS, ...verdict });
    await rm(dir, { recursive: true, force: true });
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
