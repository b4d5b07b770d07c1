/**
 * The metrics phase's progress bar (layer × metric group steps) appears on stderr when that is a
 * terminal and not when it is piped. The terminal is a real pseudo-terminal from util-linux
 * `script`; the bar's last frame must count every step (layers × groups, + baseline per layer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { randomMlp, ROOT, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

const SCRIPT = '/usr/bin/script';

function envWithoutCi(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CI;
  return env;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

test('the metrics progress bar shows on a terminal only', { skip: existsSync(SCRIPT) ? false : 'util-linux script is not installed' }, async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 60, 3);
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3]));
  const args = (out: string) => [path.join(ROOT, 'bin/layerprobe.js'), 'audit', '-m', model, '-d', data.images, '--layers', 'h1,h2', '--metrics', 'geometry,rank', '-o', path.join(dir, out)];

  // On a pseudo-terminal: stdin, stdout and stderr are the terminal.
  const cmd = [process.execPath, ...args('tty')].map(quote).join(' ');
  const tty = spawnSync(SCRIPT, ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', env: { ...envWithoutCi(), COLUMNS: '160', TERM: 'xterm' }, timeout: 300_000 });
  assert.equal(tty.status, 0, tty.stdout + tty.stderr);
  // 2 layers × (geometry, rank, baseline) = 6 steps; the last frame names the last step.
  assert.match(tty.stdout, /metrics mlp \[[^\]]*\] 6\/6 steps/);
  assert.match(tty.stdout, /h2 baseline/);
  assert.match(tty.stdout, /metrics mlp \[[^\]]*\] \d\/6 steps \| ETA [^|]*\| h1 geometry done/);

  // Piped: the stage lines, no bar.
  const piped = spawnSync(process.execPath, args('piped'), { encoding: 'utf8', env: envWithoutCi(), timeout: 300_000 });
  assert.equal(piped.status, 0, piped.stderr);
  assert.match(piped.stderr, /computing metrics for 2 layers/);
  assert.doesNotMatch(piped.stderr, /steps/);
  assert.doesNotMatch(piped.stderr, /metrics mlp \[/);
});
