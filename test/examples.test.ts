/**
 * Every example a user is shown runs as written, from a folder that is not the checkout: the shell
 * examples of README.md and the `.example(…)` lines of every command's --help (read from the
 * command files in src/cli). Each runs through bash with `layerprobe` on PATH, in one temporary
 * folder and in order (so `report runs/cmp` finds the run `compare … -o runs/cmp` made), and must
 * exit 0. To keep the suite short, commands that read a dataset run on 20 images per class (an
 * existing --per-class is lowered, or one added); the probe-spec examples of docs/probe-spec.md are
 * validated by the spec parser.
 *
 * Not run, each for the reason given: downloads, training runs and phase maps that take minutes,
 * and — until their files are fixed by their owners — help examples of audit/compare/report that
 * still name placeholder or development-tree paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseProbeSpec } from '../src/probe-spec/probe-spec.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Examples not run, by a substring that identifies them, with the reason. */
const SKIP: [string, string][] = [
  ['npm ', 'installs and the test suite: test/package.test.ts installs the package'],
  ['npx layerprobe', 'needs the package installed in the current folder (test/package.test.ts runs the installed bin)'],
  ['layerprobe train ', 'trains a network for minutes'],
  ['datasets fetch', 'downloads from the internet'],
  ['theory phase', 'a phase map takes minutes'],
  ['theory deep-linear --data fashion-mnist', 'needs the Fashion-MNIST training split, which the package does not ship'],
  ['theory rank --dataset fashion-mnist --split train', 'needs the Fashion-MNIST training split, which the package does not ship'],
  ['theory clustering --input-dim 50 --hidden 100 --points 2000', 'a larger run that takes minutes'],
  // Owned by other files (src/cli/audit.ts, compare.ts, report.ts); listed in the issue notes.
  ['audit -m ../shared/assets/models/', 'pending: names a development-tree model (src/cli/audit.ts)'],
  ['audit -m model.json ', 'pending: placeholder model path (src/cli/audit.ts)'],
  ['audit -m model.onnx -d images/', 'pending: placeholder model and image folder (src/cli/audit.ts)'],
  ['compare --models models/fmnist-mlp/model.onnx', 'pending: a checkout-relative path (src/cli/compare.ts)'],
  ['compare probes/fmnist-zoo.yaml', 'pending: a checkout-relative path; `fmnist-zoo` runs anywhere (src/cli/compare.ts)'],
  ['audit probes/fmnist-zoo.yaml', 'pending: a checkout-relative path; `fmnist-zoo` runs anywhere (src/cli/audit.ts)'],
  ['report runs/20250101T120000Z-audit-model', 'pending: placeholder run folder (src/cli/report.ts)'],
  ['report run/ --kappa-layer', 'pending: placeholder run folder (src/cli/report.ts)'],
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

/** Fewer images: --per-class 20 for commands that read a dataset. */
function smaller(cmd: string): string {
  const readsData = /^layerprobe (audit|compare|extract|theory (rank|lowrank --model))\b/.test(cmd);
  if (!readsData) return cmd;
  if (/--per-class \d+/.test(cmd)) return cmd.replace(/--per-class \d+/, '--per-class 20');
  const redirect = cmd.search(/\s[|>]/);
  return redirect < 0 ? `${cmd} --per-class 20` : `${cmd.slice(0, redirect)} --per-class 20${cmd.slice(redirect)}`;
}

function skipReason(cmd: string): string | null {
  return SKIP.find(([s]) => cmd.includes(s))?.[1] ?? null;
}

test('README and --help examples run as written from any folder', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-examples-'));
  const bin = path.join(dir, '.bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'layerprobe'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin/layerprobe.js')}" "$@"\n`);
  chmodSync(path.join(bin, 'layerprobe'), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, CI: '1', XDG_CACHE_HOME: path.join(dir, '.cache') };
  const examples = [...readmeExamples(), ...helpExamples()];
  assert.ok(examples.length > 40, `only ${examples.length} examples found`);
  const failures: string[] = [];
  const skipped: string[] = [];
  try {
    for (const example of examples) {
      const reason = skipReason(example);
      if (reason) {
        skipped.push(`${example}  (${reason})`);
        continue;
      }
      const cmd = smaller(example);
      const r = spawnSync('bash', ['-c', cmd], { cwd: dir, env, encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26 });
      if (r.status !== 0) failures.push(`${cmd}\n  exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(`ran ${examples.length - skipped.length} examples; not run:\n${skipped.join('\n')}`);
  assert.deepEqual(failures, []);
});

test('the probe-spec examples of docs/probe-spec.md are valid specs naming files that exist', () => {
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
