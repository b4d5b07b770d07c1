/**
 * Every example a user is shown works as written, from a folder that is not the checkout: the shell
 * examples of README.md and the `.example(…)` lines of every command's --help (read from the
 * command files in src/cli).
 *
 * - Every `layerprobe …` example's command line parses (the CLI's own parser, run up to the
 *   command: flags, choices, deprecated spellings, repeated flags, shipped names) — all of them,
 *   always, in a few seconds.
 * - The cheap examples run through bash with `layerprobe` on PATH, in one temporary folder and in
 *   order (so `report runs/cmp` finds the run `compare … -o runs/cmp` made), and must exit 0.
 * - The expensive ones (EXPENSIVE: whole-test-set audits, phase maps, long runs) run as written
 *   only with LAYERPROBE_SLOW_TESTS=1 (`npm run test:slow`), together with the cheap ones, in order.
 *
 * Examples are never shrunk (no --per-class is added or lowered): an example that is too slow for
 * the default tests is listed in EXPENSIVE with its reason. SKIP lists those that cannot run here
 * at all, each with the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine } from '../src/cli/main.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SLOW = process.env.LAYERPROBE_SLOW_TESTS === '1';

/** Examples never run, by a substring that identifies them, with the reason. Their arguments are still parsed. */
const SKIP: [string, string][] = [
  ['npm ', 'installs and the test suite: test/package.test.ts installs the package'],
  ['npx layerprobe', 'needs the package installed in the current folder (test/package.test.ts runs the installed bin)'],
  ['datasets fetch', 'downloads from the internet'],
  ['theory deep-linear --data fashion-mnist', 'needs the Fashion-MNIST training split, which the package does not ship'],
  ['theory rank --dataset fashion-mnist --split train', 'needs the Fashion-MNIST training split, which the package does not ship'],
  ['audit -m model.onnx -d images/', 'needs your own model and image folder (a placeholder by design)'],
  ['--shard env', 'one task of a distributed job: needs the Job\'s index in the environment and the other tasks (test/shard-deploy.test.ts runs the whole flow)'],
  ['merge shards/', 'needs the shards of a distributed audit (test/shard.test.ts merges real shards)'],
  ['| jq', 'needs jq, which is not part of the toolchain'],
];

/** Examples that run only with LAYERPROBE_SLOW_TESTS=1, with the reason (typical wall time on 2 cores). */
const EXPENSIVE: [string, string][] = [
  ['layerprobe train ', 'trains a network for minutes'],
  ['theory phase', 'a phase map: 1–5 min'],
  ['theory clustering', 'trains a two-layer network by gradient descent: 10 s to minutes'],
  ['theory deep-linear', 'thousands of full-batch gradient steps: 15 s to minutes'],
  ['theory rank --dataset fashion-mnist', 'per-class ranks of all 10,000 test images: ~30 s'],
  ['audit -m fmnist-cnn.onnx -d fashion-mnist --per-class 500', 'a 5,000-image CNN audit'],
  ['audit fmnist-zoo', 'three models over all 10,000 test images'],
  ['audit -m fmnist-mlp -d fashion-mnist --fail-under probe_heldout_accuracy=0.8', 'all 10,000 test images'],
  ['audit -m fmnist-mlp -d fashion-mnist --metrics geometry,mdlsm,separable', 'all 10,000 test images, separability LPs'],
  ['audit -m fmnist-mlp -d fashion-mnist --baseline random-layer --baseline-draws 10', 'all 10,000 test images, ten random layers per layer'],
  ['audit -m fmnist-cnn.onnx -d fashion-mnist --per-class 200', 'a 2,000-image CNN audit'],
  ['compare fmnist-zoo', 'three models over all 10,000 test images'],
  ['compare --models fmnist-mlp.onnx,fmnist-cnn.onnx -d fashion-mnist --per-class 200', 'two models on 2,000 images'],
  ['compare --models fmnist-mlp.onnx,fmnist-cnn -d fashion-mnist --per-class 100', 'two models on 1,000 images'],
  ['--input fmnist-cnn.onnx:scale=255', 'two models with probes and baselines: ~30 s (--input itself: test/compare-input.test.ts)'],
  ['report runs/cmp', 'reads the run of the README compare example (expensive)'],
  ['extract -m fmnist-cnn.onnx -d fashion-mnist --per-class 500', '5,000 images × every ReLU of the CNN'],
  ['theory lowrank --model fmnist-mlp --reference fmnist-cnn --dataset fashion-mnist', 'two models over the test set'],
];

/** Shell examples of README.md: `layerprobe …` and `npm …` lines of its ```sh blocks, comments dropped. */
function readmeExamples(): string[] {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of m[1]!.split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (/^(layerprobe|npm|npx) /.test(cmd)) out.push(cmd);
    }
  }
  return out;
}

/** The `.example('…', …)` commands of the command files, `$0` as `layerprobe`. */
function helpExamples(): string[] {
  const out: string[] = [];
  const dir = path.join(ROOT, 'src/cli');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts')).sort()) {
    const src = readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/\.example\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g)) {
      const raw = (m[1] ?? m[2]!).replace(/\\(['"\\])/g, '$1');
      out.push(raw.replace(/\$0/g, 'layerprobe'));
    }
  }
  return out;
}

const reasonIn = (list: [string, string][], cmd: string): string | null => list.find(([s]) => cmd.includes(s))?.[1] ?? null;

/** The command part of a shell line: up to the first unquoted pipe or redirection. */
function commandPart(cmd: string): string {
  let quote: string | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '|' || c === '>' || c === '<') return cmd.slice(0, i).trim();
  }
  return cmd.trim();
}

/** Each command split into words as bash splits it (quotes removed, no globbing, no expansion of anything else). */
function shellWords(cmds: readonly string[]): string[][] {
  const script = ['set -f', ...cmds.map((c) => `set -- ${commandPart(c)}; printf '%s\\0' "$#" "$@"`)].join('\n');
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const parts = r.stdout.split('\0');
  const out: string[][] = [];
  let i = 0;
  for (let k = 0; k < cmds.length; k++) {
    const n = Number(parts[i++]);
    out.push(parts.slice(i, i + n));
    i += n;
  }
  return out;
}

const examples = [...readmeExamples(), ...helpExamples()];

test('every layerprobe example parses as the CLI would parse it', async (t) => {
  assert.ok(examples.length > 40, `only ${examples.length} examples found`);
  const cli = examples.filter((e) => /^layerprobe /.test(e));
  const words = shellWords(cli);
  const failures: string[] = [];
  const deprecated: string[] = [];
  for (const [i, cmd] of cli.entries()) {
    try {
      const { deprecations } = await parseCommandLine(words[i]!.slice(1));
      if (deprecations.length) deprecated.push(`${cmd}: ${deprecations.join('; ')}`);
    } catch (e) {
      failures.push(`${cmd}\n  ${(e as Error).message}`);
    }
  }
  if (deprecated.length) t.diagnostic(`examples that use a deprecated spelling (they still work):\n${deprecated.join('\n')}`);
  assert.deepEqual(failures, []);
});

test('the skip and expensive lists name examples that exist', () => {
  for (const [s] of [...SKIP, ...EXPENSIVE]) assert.ok(examples.some((e) => e.includes(s)), `no example matches \`${s}\``);
});

/** Runs the examples in order in a fresh folder; returns failures and each run's seconds. */
function runExamples(list: readonly string[]): { failures: string[]; times: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-examples-'));
  const bin = path.join(dir, '.bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'layerprobe'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin/layerprobe.js')}" "$@"\n`);
  chmodSync(path.join(bin, 'layerprobe'), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, CI: '1', XDG_CACHE_HOME: path.join(dir, '.cache') };
  const failures: string[] = [];
  const times: string[] = [];
  const done = new Set<string>();
  try {
    for (const cmd of list) {
      // The same line shown in two places (README and --help) runs once.
      if (done.has(cmd)) continue;
      done.add(cmd);
      const t0 = performance.now();
      // 45 min: the README's full ViT training (10 epochs over 60,000 images on TF.js wasm) took
      // 31 min on a shared 2-core machine (the shipped card: 35 min); the rest take seconds to minutes.
      const r = spawnSync('bash', ['-c', cmd], { cwd: dir, env, encoding: 'utf8', timeout: 2_700_000, maxBuffer: 1 << 26 });
      times.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s  ${cmd}`);
      if (r.status !== 0) failures.push(`${cmd}\n  exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { failures, times };
}

test('the cheap examples run as written from any folder', { skip: SLOW ? 'LAYERPROBE_SLOW_TESTS=1 runs every example in the next test' : false }, (t) => {
  const cheap = examples.filter((e) => !reasonIn(SKIP, e) && !reasonIn(EXPENSIVE, e));
  const { failures, times } = runExamples(cheap);
  t.diagnostic(`ran ${cheap.length} cheap examples:\n${times.join('\n')}\nexpensive (npm run test:slow):\n${examples.filter((e) => !reasonIn(SKIP, e) && reasonIn(EXPENSIVE, e)).map((e) => `${e}  (${reasonIn(EXPENSIVE, e)})`).join('\n')}`);
  assert.deepEqual(failures, []);
});

test('every runnable example runs as written from any folder (LAYERPROBE_SLOW_TESTS=1)', { skip: SLOW ? false : 'expensive examples: set LAYERPROBE_SLOW_TESTS=1 (npm run test:slow)' }, (t) => {
  const runnable = examples.filter((e) => !reasonIn(SKIP, e));
  const { failures, times } = runExamples(runnable);
  t.diagnostic(`ran ${runnable.length} examples:\n${times.join('\n')}\nnot run:\n${examples.filter((e) => reasonIn(SKIP, e)).map((e) => `${e}  (${reasonIn(SKIP, e)})`).join('\n')}`);
  assert.deepEqual(failures, []);
});

test('the probe-spec examples of docs/probe-spec.md are valid specs naming files that exist', async () => {
  const { parseProbeSpec } = await import('../src/probe-spec/probe-spec.js');
  const text = readFileSync(path.join(ROOT, 'docs/probe-spec.md'), 'utf8');
  const blocks = Array.from(text.matchAll(/```yaml\n([\s\S]*?)```/g), (m) => m[1]!);
  assert.ok(blocks.length >= 4);
  // Written as if in probes/: model paths resolve against that folder.
  const file = path.join(ROOT, 'probes', 'example.yaml');
  for (const b of blocks) {
    const spec = parseProbeSpec(b, file);
    for (const m of spec.models) {
      if (m.path.endsWith('convnet.onnx')) continue; // the PyTorch export of docs/pytorch.md
      assert.ok(readdirSync(path.dirname(m.path)).includes(path.basename(m.path)), m.path);
    }
  }
});
