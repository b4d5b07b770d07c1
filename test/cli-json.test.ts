/**
 * One `--json` envelope for every command that has --json: `{ command, version, result,
 * warnings }` on stdout and nothing else there; `audit --json`'s result is the report. And one
 * meaning per short flag across all commands, with the old spellings still working beside a
 * deprecation warning (which the envelope carries too).
 *
 * The commands run in this process through the CLI's own `main` (one start-up for all of them);
 * the deprecation check runs the real bin.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { main, SHORT_FLAGS, SYMBOL_FLAGS } from '../src/cli/main.js';
import { layerprobeVersion } from '../src/util/versions.js';
import { reportSchema } from '../src/report/schema.js';
import { cli, randomMlp, ROOT, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

interface Envelope {
  command: string;
  version: string;
  result: unknown;
  warnings: string[];
}

/** Runs `layerprobe <args>` in this process; returns what it printed on stdout. */
async function run(args: string[]): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await main(args);
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  return text;
}

function envelope(stdout: string, command: string): Envelope {
  const e = JSON.parse(stdout) as Envelope;
  assert.deepEqual(Object.keys(e).sort(), ['command', 'result', 'version', 'warnings'], `${command}: envelope keys`);
  assert.equal(e.command, command);
  assert.equal(e.version, layerprobeVersion());
  assert.ok(Array.isArray(e.warnings) && e.warnings.every((w) => typeof w === 'string'), `${command}: warnings`);
  assert.ok(e.result !== null && typeof e.result === 'object', `${command}: result`);
  return e;
}

test('every --json prints one envelope {command, version, result, warnings}', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 60, 3);
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3]));
  const seen = new Set<string>();
  const check = async (command: string, args: string[]) => {
    seen.add(command);
    return envelope(await run(args), command);
  };

  const layers = await check('layers', ['layers', model, '--json']);
  assert.deepEqual((layers.result as { layers: { id: string }[] }).layers.map((l) => l.id).filter((id) => /^h\d$/.test(id)), ['h1', 'h2']);
  const list = await check('datasets list', ['datasets', 'list', '--json']);
  assert.ok((list.result as { name: string }[]).some((r) => r.name === 'fashion-mnist'));
  await check('datasets info', ['datasets', 'info', 'fashion-mnist', '--json']);

  const ex = await check('extract', ['extract', '-m', model, '-d', data.images, '-o', path.join(dir, 'x'), '--json']);
  assert.equal((ex.result as { outDir: string }).outDir, path.join(dir, 'x'));

  // audit: the result is the report, and the envelope's warnings are the report's.
  const au = await check('audit', ['audit', '-m', model, '-d', data.images, '--metrics', 'geometry', '--baseline', 'none', '-o', path.join(dir, 'a'), '--json']);
  const report = reportSchema.parse(au.result);
  assert.deepEqual(report, reportSchema.parse(JSON.parse(readFileSync(path.join(dir, 'a', 'report.json'), 'utf8'))));
  assert.deepEqual(au.warnings, report.warnings);

  const cmp = await check('compare', ['compare', '--models', `${model},${model}`, '-d', data.images, '--metrics', 'geometry', '--baseline', 'none', '-o', path.join(dir, 'c'), '--json']);
  assert.ok(Array.isArray(cmp.result) && (cmp.result as { model: string }[]).length > 0);

  const rep = await check('report', ['report', path.join(dir, 'a'), '-o', path.join(dir, 'page.html'), '--json']);
  assert.equal((rep.result as { html: string }).html, path.join(dir, 'page.html'));

  await run(['audit', '-m', model, '-d', data.images, '--metrics', 'geometry', '--baseline', 'none', '--shard', '0/1', '-o', path.join(dir, 'shards'), '-q']);
  const shards = readdirSync(path.join(dir, 'shards')).map((f) => path.join(dir, 'shards', f));
  const mg = await check('merge', ['merge', ...shards, '-o', path.join(dir, 'm'), '--json']);
  reportSchema.parse(mg.result);

  const exp = await check('export', ['export', 'fmnist-mlp', '-o', path.join(dir, 'mlp.onnx2.onnx'), '--json']);
  assert.equal((exp.result as { out: string }).out, path.join(dir, 'mlp.onnx2.onnx'));

  await check('theory uos', ['theory', 'uos', '--ambient-dim', '10', '--intrinsic-dim', '2', '--n', '20', '--json']);
  await check('theory phase', ['theory', 'phase', '--intrinsic-dim', '2,3', '--ambient-dim', '12', '--D', '2:14', '--trials', '2', '--json', '-o', path.join(dir, 'phase')]);
  await check('theory rank', ['theory', 'rank', '--dataset', data.images, '--json']);
  await check('theory deep-linear', ['theory', 'deep-linear', '--depth', '3', '--width', '8', '--per-class', '2', '--dim', '8', '--steps', '200', '--json']);
  await check('theory lowrank', ['theory', 'lowrank', '--symbols', '8', '--classes', '4', '--epsilon', '0.1,0.5', '--json']);
  await check('theory clustering', ['theory', 'clustering', '--input-dim', '5', '--hidden', '8', '--points', '40', '--epochs', '20', '--json']);

  // Every command file with a --json option is covered above (train's is read by
  // test/train-monitor.test.ts; it needs minutes of training).
  const withJson = readdirSync(path.join(ROOT, 'src/cli')).filter((f) => /option\('json'/.test(readFileSync(path.join(ROOT, 'src/cli', f), 'utf8')));
  const covered = (f: string) => ['train.ts'].includes(f) || [...seen].some((c) => f.replace(/\.ts$/, '').replace('-', ' ').startsWith(c.split(' ')[0]!) || f === `${c.replace(' ', '-')}.ts`);
  assert.deepEqual(withJson.filter((f) => !covered(f)), []);
});

/** Single-letter flags as the command files declare them: aliases, and options named by one letter. */
function declaredShortFlags(): { file: string; letter: string; long: string | null }[] {
  const out: { file: string; letter: string; long: string | null }[] = [];
  const dir = path.join(ROOT, 'src/cli');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const src = readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/\.option\('([a-zA-Z][a-zA-Z0-9-]*)',\s*\{([^}]*)\}/g)) {
      const [, name, body] = m as unknown as [string, string, string];
      const alias = /alias:\s*'([a-zA-Z])'/.exec(body);
      if (alias) out.push({ file: f, letter: alias[1]!, long: name });
      if (name.length === 1 && !/hidden:\s*true/.test(body)) out.push({ file: f, letter: name, long: null });
    }
  }
  return out;
}

test('one meaning per short flag across all commands', () => {
  const flags = declaredShortFlags();
  assert.ok(flags.length > 20, `only ${flags.length} short flags found`);
  for (const { file, letter, long } of flags) {
    assert.ok(letter in SHORT_FLAGS || (long === null && letter in SYMBOL_FLAGS), `${file}: -${letter} has no entry in SHORT_FLAGS`);
    assert.ok(!(letter in SHORT_FLAGS && letter in SYMBOL_FLAGS), `-${letter} has two meanings`);
    // An alias must be the letter's one meaning; a theory option named by the letter (K, n, D)
    // carries that meaning under the paper's symbol.
    if (long !== null) assert.equal(long, SHORT_FLAGS[letter], `${file}: -${letter} is --${long} here but --${SHORT_FLAGS[letter]} elsewhere`);
  }
  assert.equal(SHORT_FLAGS.r, 'reference');
});

test('old spellings still work, with a deprecation warning on stderr and in the envelope', async () => {
  const r = cli(['theory', 'uos', '--ambient-dim', '10', '--r', '3', '--n', '20', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /layerprobe: warning: --r is deprecated in `theory uos`; use --intrinsic-dim/);
  const e = envelope(r.stdout, 'theory uos');
  assert.equal((e.result as { r: number }).r, 3);
  assert.ok(e.warnings.some((w) => /--r is deprecated/.test(w)), JSON.stringify(e.warnings));
  // train -a was the architecture: still read so, with a warning (here refused at once: no such arch).
  const t = cli(['train', '-a', 'nope', '-o', path.join(await tempDir(), 'm')]);
  assert.equal(t.code, 2);
  assert.match(t.stderr, /-a is deprecated in `train`; use --arch/);
  assert.match(t.stderr, /arch/);
});
