/**
 * End-to-end tests of the command line: real files, the real bin entry, exit codes and the
 * one-line error contract (no stack traces), atomic output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile, readdir, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { readNpy } from '../src/data/npy.js';
import { loadTf } from '../src/runtime/backend.js';
import { saveToDir } from '../src/runtime/tfjs-io.js';
import { cli, hasShared, mlpForward, randomMlp, ROOT, sharedPath, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

function assertOneLineError(r: { stderr: string }, pattern: RegExp): void {
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('  hint:'));
  assert.equal(lines.length, 1, `one error line, got:\n${r.stderr}`);
}

test('extract writes each layer of a self-built ONNX MLP equal to a direct computation', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 60, 3);
  const w = randomMlp([64, 12, 7, 3]);
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, w);
  const out = path.join(dir, 'acts');
  const r = cli(['extract', '-m', model, '-d', data.images, '--batch-size', '7', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), out);
  const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {
    models: { layers: { id: string; file: string }[]; preprocess: { scale: number } }[];
    dataset: { selectedItems: number };
  };
  assert.deepEqual(manifest.models[0]!.layers.map((l) => l.id), ['h1', 'h2']);
  assert.equal(manifest.models[0]!.preprocess.scale, 255);
  const labels = await readNpy(path.join(out, 'labels.npy'));
  const indices = await readNpy(path.join(out, 'indices.npy'));
  const h1 = await readNpy(path.join(out, 'h1.npy'));
  const h2 = await readNpy(path.join(out, 'h2.npy'));
  const logits = await readNpy(path.join(out, 'output.npy'));
  assert.deepEqual(h1.shape, [60, 12]);
  assert.deepEqual(h2.shape, [60, 7]);
  let maxErr = 0;
  for (let r0 = 0; r0 < 60; r0++) {
    const idx = Number(indices.data[r0]);
    assert.equal(Number(labels.data[r0]), data.y[idx]);
    const x = Array.from(data.pixels.subarray(idx * 64, idx * 64 + 64), (v) => v / 255);
    const ref = mlpForward(w, x);
    for (let j = 0; j < 12; j++) maxErr = Math.max(maxErr, Math.abs(Number(h1.data[r0 * 12 + j]) - ref.h1[j]!));
    for (let j = 0; j < 7; j++) maxErr = Math.max(maxErr, Math.abs(Number(h2.data[r0 * 7 + j]) - ref.h2[j]!));
    for (let j = 0; j < 3; j++) maxErr = Math.max(maxErr, Math.abs(Number(logits.data[r0 * 3 + j]) - ref.logits[j]!));
  }
  assert.ok(maxErr < 1e-5, `max abs error ${maxErr}`);
  // An existing output folder is never overwritten without --force.
  const again = cli(['extract', '-m', model, '-d', data.images, '-o', out]);
  assert.equal(again.code, 2);
  assertOneLineError(again, /already exists/);
  assert.equal(cli(['extract', '-m', model, '-d', data.images, '-o', out, '--force', '-q']).code, 0);
});

test('extract --reduce project:k and --per-class give stratified, reduced features', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 90, 3);
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3]));
  const out = path.join(dir, 'acts');
  const r = cli(['extract', '-m', model, '-d', data.images, '--per-class', '10', '--layers', 'h1', '--reduce', 'project:4', '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const parsed = (JSON.parse(r.stdout) as { result: unknown }).result as { manifest: { dataset: { perClassCounts: number[] }; models: { layers: { reduction: string; dim: number }[] }[] } };
  assert.deepEqual(parsed.manifest.dataset.perClassCounts, [10, 10, 10]);
  assert.match(parsed.manifest.models[0]!.layers[0]!.reduction, /^project/);
  const h1 = await readNpy(path.join(out, 'h1.npy'));
  assert.deepEqual(h1.shape, [30, 4]);
});

test('layers lists an ONNX model with the default selection marked, and --json is pure JSON', async () => {
  const dir = await tempDir();
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3]));
  const r = cli(['layers', model, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = (JSON.parse(r.stdout) as { result: unknown }).result as { layers: { id: string; defaultSelected: boolean; isOutput: boolean }[] };
  assert.deepEqual(info.layers.filter((l) => l.defaultSelected).map((l) => l.id), ['h1', 'h2']);
  assert.deepEqual(info.layers.filter((l) => l.isOutput).map((l) => l.id), ['logits']);
  const text = cli(['layers', model]);
  assert.match(text.stdout, /\*\s+h1\s+Relu/);
});

test('bad input gives one line and the right exit code', async (t) => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 30, 3, { gzip: false });
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3]));

  await t.test('missing model file → 2', () => {
    const r = cli(['layers', path.join(dir, 'nope.onnx')]);
    assert.equal(r.code, 2);
    assertOneLineError(r, /not found/);
  });
  await t.test('corrupt ONNX bytes → 1', async () => {
    const bad = path.join(dir, 'bad.onnx');
    const bytes = await readFile(model);
    await writeFile(bad, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = cli(['layers', bad]);
    assert.equal(r.code, 1);
    assertOneLineError(r, /not a valid ONNX model|ONNX/);
  });
  await t.test('unknown layer name → 2 with a suggestion', () => {
    const r = cli(['extract', '-m', model, '-d', data.images, '--layers', 'h3', '-o', path.join(dir, 'x')]);
    assert.equal(r.code, 2);
    assertOneLineError(r, /layer `h3` not found.*did you mean `h[12]`/);
    assert.equal(existsSync(path.join(dir, 'x')), false);
  });
  await t.test('a misspelt option → 2, one line naming the close option and the command help', () => {
    const r = cli(['audit', '-m', model, '-d', data.images, '--metric', 'geometry', '-o', path.join(dir, 'm')]);
    assert.equal(r.code, 2);
    assertOneLineError(r, /Unknown argument: metric\n  hint: did you mean `--metrics`\? See `layerprobe audit --help`/);
    const sub = cli(['theory', 'phase', '--trails', '3']);
    assert.equal(sub.code, 2);
    assertOneLineError(sub, /Unknown argument: trails\n  hint: did you mean `--trials`\? See `layerprobe theory phase --help`/);
    const far = cli(['extract', '-m', model, '-d', data.images, '--bogus']);
    assertOneLineError(far, /Unknown argument: bogus\n  hint: See `layerprobe extract --help`\n$/);
    assert.equal(existsSync(path.join(dir, 'm')), false);
  });
  await t.test('a seed that is not a 32-bit whole number → 2, nothing written', () => {
    for (const seed of ['abc', '1.5', '-1', '4294967296']) {
      const r = cli(['extract', '-m', model, '-d', data.images, '--seed', seed, '-o', path.join(dir, 's')]);
      assert.equal(r.code, 2, seed);
      assertOneLineError(r, /--seed must be a whole number/);
    }
    assert.equal(existsSync(path.join(dir, 's')), false);
  });
  await t.test('compare with one model, --buffer-per-class 0 and --ci 2 → 2, nothing written', () => {
    const one = cli(['compare', '--models', model, '-d', data.images, '-o', path.join(dir, 'c1')]);
    assert.equal(one.code, 2);
    assertOneLineError(one, /compare needs at least two models \(got 1\)/);
    // A missing second model is found before the first one runs (no progress, no stage lines).
    const missing = cli(['compare', '--models', `${model},${path.join(dir, 'nope.onnx')}`, '-d', data.images, '-o', path.join(dir, 'c0')]);
    assert.equal(missing.code, 2);
    assertOneLineError(missing, /model .*nope\.onnx not found/);
    const buf = cli(['audit', '-m', model, '-d', data.images, '--buffer-per-class', '0', '-o', path.join(dir, 'c2')]);
    assert.equal(buf.code, 2);
    assertOneLineError(buf, /--buffer-per-class must be a whole number ≥ 2/);
    const ci = cli(['audit', '-m', model, '-d', data.images, '--ci', '2', '-o', path.join(dir, 'c3')]);
    assert.equal(ci.code, 2);
    assertOneLineError(ci, /--ci must be a level between 0 and 1/);
    for (const f of ['c1', 'c2', 'c3']) assert.equal(existsSync(path.join(dir, f)), false, f);
  });
  await t.test('preprocessing flags go through the preprocess schema: --size 0,0 and --std 1,0 → 2', () => {
    for (const [flag, value] of [['--size', '0,0'], ['--std', '1,0']] as const) {
      const r = cli(['extract', '-m', model, '-d', data.images, flag, value, '-o', path.join(dir, 'p')]);
      assert.equal(r.code, 2, `${flag} ${value}`);
      assertOneLineError(r, new RegExp(`${flag}: Too small`));
    }
  });
  await t.test('truncated IDX → 1', async () => {
    const cut = path.join(dir, 'cut');
    await mkdir(cut);
    const bytes = await readFile(data.images);
    await writeFile(path.join(cut, 't10k-images-idx3-ubyte'), bytes.subarray(0, bytes.length - 100));
    await writeFile(path.join(cut, 't10k-labels-idx1-ubyte'), await readFile(data.labels));
    const r = cli(['extract', '-m', model, '-d', path.join(cut, 't10k-images-idx3-ubyte'), '-o', path.join(dir, 'y')]);
    assert.equal(r.code, 1);
    assertOneLineError(r, /truncat|bytes/i);
    assert.equal(existsSync(path.join(dir, 'y')), false);
  });
  await t.test('image/label count mismatch → 1', async () => {
    const mm = path.join(dir, 'mm');
    await mkdir(mm);
    await writeFile(path.join(mm, 't10k-images-idx3-ubyte'), await readFile(data.images));
    const labels = await readFile(data.labels);
    const fewer = Buffer.from(labels.subarray(0, labels.length - 5));
    fewer.writeUInt32BE(25, 4);
    await writeFile(path.join(mm, 't10k-labels-idx1-ubyte'), fewer);
    const r = cli(['extract', '-m', model, '-d', path.join(mm, 't10k-images-idx3-ubyte'), '-o', path.join(dir, 'z')]);
    assert.equal(r.code, 1);
    assertOneLineError(r, /30.*25|25.*30/);
  });
  await t.test('image folder with one class → 2', async () => {
    const folder = path.join(dir, 'one-class');
    await mkdir(path.join(folder, 'cat'), { recursive: true });
    for (let i = 0; i < 3; i++) {
      await sharp(Buffer.alloc(64, i * 40), { raw: { width: 8, height: 8, channels: 1 } }).png().toFile(path.join(folder, 'cat', `${i}.png`));
    }
    const r = cli(['extract', '-m', model, '-d', folder, '-o', path.join(dir, 'w')]);
    assert.equal(r.code, 2);
    assertOneLineError(r, /one class/);
  });
  await t.test('input that does not fit the model → 2', async () => {
    const wide = path.join(dir, 'wide.onnx');
    await writeOnnxMlp(wide, randomMlp([50, 4, 4, 3]));
    const r = cli(['extract', '-m', wide, '-d', data.images, '-o', path.join(dir, 'v')]);
    assert.equal(r.code, 2);
    assertOneLineError(r, /does not fit/);
  });
  await t.test('TF.js model.json whose weight shard is missing → 1', async () => {
    const { tf } = await loadTf();
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [64], activation: 'relu' }), tf.layers.dense({ units: 2 })] });
    const mdir = path.join(dir, 'tfjs');
    await m.save(saveToDir(mdir));
    m.dispose();
    const shards = (await readdir(mdir)).filter((f) => f !== 'model.json');
    for (const s of shards) await rm(path.join(mdir, s));
    const r = cli(['layers', path.join(mdir, 'model.json')]);
    assert.equal(r.code, 1);
    assertOneLineError(r, /shard .* missing/);
  });
  await t.test('unknown dataset name → 2 with a suggestion', () => {
    const r = cli(['extract', '-m', model, '-d', 'fashion-mnst', '-o', path.join(dir, 'u')]);
    assert.equal(r.code, 2);
    assertOneLineError(r, /fashion-mnist/);
  });
  await t.test('unknown flag → 2', () => {
    const r = cli(['extract', '-m', model, '-d', data.images, '--no-such-flag']);
    assert.equal(r.code, 2);
  });
  await t.test('a single-value flag given twice → 2, before any work (repeatable flags still repeat)', () => {
    for (const args of [
      ['--metrics', 'geometry', '--metrics', 'probe'],
      ['--scale', '255', '--scale', '1'],
      ['-o', path.join(dir, 'x1'), '--out', path.join(dir, 'x2')],
    ]) {
      const r = cli(['audit', '-m', model, '-d', data.images, ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assertOneLineError(r, /was given more than once/);
    }
    const ok = cli(['audit', '-m', model, '-m', model, '-d', data.images, '--metrics', 'geometry', '--fail-under', 'compression=0', '--fail-under', 'discrimination=0', '-q', '-o', path.join(dir, 'rep')]);
    assert.equal(ok.code, 0, ok.stderr);
  });
  await t.test('a value outside the choices → 2, on one line', () => {
    const r = cli(['datasets', 'nope']);
    assert.equal(r.code, 2);
    assertOneLineError(r, /Invalid values: Argument: action, Given: "nope", Choices: "list", "info", "fetch"/);
  });
  await t.test('bad reduction for a dense layer → 2', () => {
    const r = cli(['extract', '-m', model, '-d', data.images, '--reduce', 'gap', '-o', path.join(dir, 't')]);
    assert.equal(r.code, 2);
    assertOneLineError(r, /gap needs a conv map/);
  });
});

test('an interrupted extract leaves no output folder behind', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 20000, 4);
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 4]));
  const out = path.join(dir, 'acts');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/layerprobe.js'), 'extract', '-m', model, '-d', data.images, '--batch-size', '1', '-o', out], {
    env: { ...process.env, CI: '1' },
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt once the partial folder exists, i.e. mid-run.
  for (let i = 0; i < 600; i++) {
    const partial = (await readdir(dir)).some((f) => f.startsWith('.acts.partial'));
    if (partial) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGINT');
  const code = await exited;
  assert.equal(code, 130, stderr);
  const left = await readdir(dir);
  assert.deepEqual(left.filter((f) => f.includes('acts')), [], `left behind: ${left.join(', ')}`);
  assert.equal(stdout, '', 'nothing that looks like a result is printed after the interrupt');
  assert.match(stderr, /interrupted; removing unfinished output\n$/, 'the interrupt line is the last thing on stderr');
});

test('the DeepEverest CNN extracts through the CLI with ≥97% accuracy on MNIST', async (t) => {
  if (!hasShared('models/mnist-cnn-deepeverest.onnx') || !hasShared('data/mnist/t10k-images-idx3-ubyte.gz')) {
    t.skip('needs ../shared/assets/models/mnist-cnn-deepeverest.onnx and data/mnist (absent)');
    return;
  }
  const dir = await tempDir();
  const out = path.join(dir, 'acts');
  const r = cli(['extract', '-m', sharedPath('models/mnist-cnn-deepeverest.onnx'), '-d', sharedPath('data/mnist/t10k-images-idx3-ubyte.gz'), '--limit', '2000', '--layers', 'all', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const y = await readNpy(path.join(out, 'labels.npy'));
  const o = await readNpy(path.join(out, 'output.npy'));
  let correct = 0;
  for (let i = 0; i < y.shape[0]!; i++) {
    let best = 0;
    for (let j = 1; j < 10; j++) if (Number(o.data[i * 10 + j]) > Number(o.data[i * 10 + best])) best = j;
    if (best === Number(y.data[i])) correct++;
  }
  const acc = correct / y.shape[0]!;
  t.diagnostic(`accuracy ${acc} on ${y.shape[0]} stratified MNIST test images`);
  assert.ok(acc >= 0.97, `accuracy ${acc}`);
  const m = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as { models: { layers: { id: string; shape: (number | null)[] }[] }[] };
  const shapes = m.models[0]!.layers.map((l) => l.shape.slice(1).join('x'));
  for (const s of ['10x24x24', '10x12x12', '20x8x8', '20x4x4', '320', '50']) assert.ok(shapes.includes(s), `missing a ${s} tensor: ${shapes.join(' ')}`);
});

test('schema prints the report JSON Schema; --version --verbose names the TF.js backend; datasets list works', () => {
  const s = cli(['schema']);
  assert.equal(s.code, 0, s.stderr);
  const schema = JSON.parse(s.stdout) as { $id: string; properties: Record<string, unknown> };
  assert.equal(schema.$id, 'layerprobe.report/1');
  for (const k of ['schema', 'dataset', 'models', 'warnings']) assert.ok(k in schema.properties, k);
  const v = cli(['--version', '--verbose']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /backend in use: (wasm|cpu|tensorflow)/);
  const d = cli(['datasets', 'list', '--json']);
  assert.equal(d.code, 0, d.stderr);
  const names = (JSON.parse(d.stdout) as { result: { name: string }[] }).result.map((r) => r.name);
  assert.deepEqual(names.sort(), ['fashion-mnist', 'mnist']);
  const info = cli(['datasets', 'info', 'fashoin-mnist']);
  assert.equal(info.code, 2);
  assert.match(info.stderr, /fashion-mnist/);
});
