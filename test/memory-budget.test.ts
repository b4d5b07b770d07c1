/**
 * Memory-aware batching (runtime/memory-budget.ts, pipeline/capture.ts): a small budget lowers
 * the batch, and the run gives the same numbers as a run at that batch fixed by hand; an engine
 * that really runs out of memory (onnxruntime asked for a 1 TB tensor) ends in one RuntimeFailure
 * that names --batch-size and --max-memory; sizes parse in binary units and wrong ones are usage
 * errors; the known out-of-memory messages of wasm, onnxruntime and V8 are recognised.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import { capture } from '../src/pipeline/capture.js';
import { prepareData, prepareModel, type PreparedData } from '../src/pipeline/prepare.js';
import { OnnxGraphBuilder } from '../src/runtime/onnx-build.js';
import { budgetFor, chooseBatch, estimateBytesPerItem, isAllocationFailure, parseMemorySize, WASM_HEAP_BUDGET } from '../src/runtime/memory-budget.js';
import { cli, ROOT, tempDir } from './helpers/fixtures.js';

let tmp: string;
let data: PreparedData;

before(async () => {
  tmp = await tempDir('lp-memory-');
  data = await prepareData('fashion-mnist', {}, { limit: 300, seed: 0 });
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Every batch's features of every layer, concatenated per layer, with the batch sizes seen. */
async function run(file: string, opts: { batchSize?: number; maxMemory?: number }): Promise<{ features: Map<string, Float32Array[]>; sizes: number[]; notes: string[]; batchSize: number }> {
  const model = await prepareModel(file, data, { reduce: 'flatten' });
  const features = new Map<string, Float32Array[]>();
  const sizes: number[] = [];
  const notes: string[] = [];
  try {
    const r = await capture({
      dataset: data.dataset,
      indices: data.indices,
      runner: model.runner,
      plans: model.plans,
      preprocess: model.preprocess,
      ...opts,
      onNote: (m) => notes.push(m),
      onBatch(b) {
        sizes.push(b.raw.shape[0]);
        for (const [id, f] of b.features) features.set(id, [...(features.get(id) ?? []), f]);
      },
    });
    return { features, sizes, notes, batchSize: r.batchSize };
  } finally {
    await model.runner.dispose();
  }
}

test('a small --max-memory picks a smaller batch, and the numbers equal a run at that batch', async () => {
  const file = path.join(ROOT, 'models/fmnist-cnn/model.json');
  const budget = 3 * 1024 * 1024;
  const small = await run(file, { maxMemory: budget });
  assert.ok(small.batchSize > 1 && small.batchSize < 64, `batch ${small.batchSize}`);
  // Every batch but the last is the chosen one, and the chosen one fits the estimate.
  assert.deepEqual(small.sizes.slice(0, -1), new Array(small.sizes.length - 1).fill(small.batchSize));
  assert.equal(small.sizes.reduce((a, b) => a + b, 0), 300);
  assert.match(small.notes[0] ?? '', new RegExp(`^batch of ${small.batchSize} instead of 64 images: about .* of activations per image \\(--max-memory 3 MiB\\)$`));
  const fixed = await run(file, { batchSize: small.batchSize, maxMemory: 1024 ** 3 });
  assert.deepEqual(fixed.sizes, small.sizes);
  assert.deepEqual(fixed.notes, []);
  assert.deepEqual([...small.features.keys()], [...fixed.features.keys()]);
  const joined = (parts: Float32Array[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  for (const [id, f] of small.features) assert.ok(joined(f).equals(joined(fixed.features.get(id)!)), `layer ${id}: the same bytes`);
  // The default budget leaves this small model at the default batch.
  assert.deepEqual((await run(file, {})).sizes.slice(0, 4), [64, 64, 64, 64]);
});

test('the estimate counts input, every layer once and fetched layers three times; the batch is the budget over it', () => {
  const layers = [
    { id: 'a', op: 'Conv', shape: [null, 4, 5, 5], kind: 'conv' as const, layout: 'NCHW' as const, index: 1, defaultSelected: true, isOutput: false },
    { id: 'b', op: 'Gemm', shape: [null, 10], kind: 'dense' as const, layout: 'NC' as const, index: 2, defaultSelected: false, isOutput: true },
  ];
  // 4 bytes × (input 75 + a 100×3 + b 10).
  assert.equal(estimateBytesPerItem([null, 3, 5, 5], layers, ['a']), 4 * (75 + 300 + 10));
  assert.equal(chooseBatch(64, 1000 * 1540, 1540), 64);
  assert.equal(chooseBatch(64, 10 * 1540 + 1539, 1540), 10);
  assert.equal(chooseBatch(64, 10, 1540), 1);
  assert.equal(budgetFor('tfjs wasm', 8 * 1024 ** 3), WASM_HEAP_BUDGET);
  assert.equal(budgetFor('onnxruntime-node 1.30.0 cpu (converted from TF.js; checked against tfjs wasm …)', 8 * 1024 ** 3), 8 * 1024 ** 3);
});

/**
 * [N,784] → Relu `r` → out, plus a branch that expands to K = floor(max(x)/100)·2^37 + 1 values
 * per input value: the dry run's inputs in [0,1) give K = 1, raw pixels (scale 1) a terabyte.
 */
async function writeGreedyModel(file: string): Promise<void> {
  const g = new OnnxGraphBuilder();
  g.input('x', ['N', 784]);
  g.node('Relu', ['x'], ['r']);
  g.node('ReduceMax', ['x'], ['m'], { keepdims: 0 });
  g.initializer('hundred', new Float32Array([100]), []);
  g.node('Div', ['m', 'hundred'], ['m100']);
  g.node('Floor', ['m100'], ['fl']);
  g.node('Cast', ['fl'], ['fi'], { to: 7 });
  g.initializer('huge', new BigInt64Array([1n << 37n]), []);
  g.node('Mul', ['fi', 'huge'], ['kh']);
  g.initializer('one', new BigInt64Array([1n]), []);
  g.node('Add', ['kh', 'one'], ['k']);
  g.initializer('axis0', new BigInt64Array([0n]), [1]);
  g.node('Unsqueeze', ['k', 'axis0'], ['k1']);
  g.initializer('lead', new BigInt64Array([1n, 1n]), [2]);
  g.node('Concat', ['lead', 'k1'], ['shape'], { axis: 0 });
  g.initializer('axis2', new BigInt64Array([2n]), [1]);
  g.node('Unsqueeze', ['r', 'axis2'], ['u']);
  g.node('Expand', ['u', 'shape'], ['big']);
  g.node('ReduceSum', ['big', 'axis2'], ['sum'], { keepdims: 0 });
  g.node('Add', ['sum', 'r'], ['out']);
  g.output('out', ['N', 784]);
  await writeFile(file, g.toBytes(17));
}

test('an engine out of memory halves the batch down to one image, then fails naming --batch-size and --max-memory', async () => {
  const file = path.join(tmp, 'greedy.onnx');
  await writeGreedyModel(file);
  const model = await prepareModel(file, data, { layers: 'r', reduce: 'flatten', preprocess: { scale: 1 } });
  const notes: string[] = [];
  try {
    await assert.rejects(
      capture({ dataset: data.dataset, indices: data.indices, runner: model.runner, plans: model.plans, preprocess: model.preprocess, onNote: (m) => notes.push(m), onBatch() {} }),
      (e: unknown) => {
        assert.ok(e instanceof RuntimeFailure, String(e));
        assert.match(e.message, /^model .*greedy\.onnx ran out of memory on a batch of 1 image \(memory budget .*\): .*Failed to allocate memory/);
        assert.doesNotMatch(e.message, /\n/);
        assert.match(`${e.message} ${e.hint ?? ''}`, /--batch-size/);
        assert.match(`${e.message} ${e.hint ?? ''}`, /--max-memory/);
        return true;
      },
    );
    assert.deepEqual(notes.map((n) => /^batch of (\d+)/.exec(n)![1]), ['32', '16', '8', '4', '2', '1']);
  } finally {
    await model.runner.dispose();
  }
});

test('memory sizes: binary units, and anything else is a usage error', () => {
  assert.equal(parseMemorySize('2G'), 2 * 1024 ** 3);
  assert.equal(parseMemorySize('512M'), 512 * 1024 ** 2);
  assert.equal(parseMemorySize('1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseMemorySize('300000'), 300000);
  for (const bad of ['', 'lots', '2X', '-1G', '0']) assert.throws(() => parseMemorySize(bad), UsageError, bad);
});

test('out-of-memory messages of wasm, onnxruntime and V8 are told from other failures', () => {
  for (const m of [
    'running model.json failed: memory access out of bounds',
    'model m.onnx failed on a batch of 64: Non-zero status code returned while running Conv node. Status Message: Failed to allocate memory for requested buffer of size 123',
    'model m.onnx failed on a batch of 64: std::bad_alloc',
    'RangeError: Array buffer allocation failed',
  ]) assert.ok(isAllocationFailure(m), m);
  for (const m of ['running model.json failed: Error in matMul: inner shapes (3) and (4) of Tensors must match', 'Unsupported model IR version: 99']) assert.ok(!isAllocationFailure(m), m);
});

test('CLI: --max-memory lowers the batch (said on stderr), --engine tfjs is recorded in the summary; a bad size exits 2', () => {
  const out = path.join(tmp, 'run');
  const r = cli(['audit', '-m', path.join(ROOT, 'models/fmnist-mlp/model.json'), '-d', 'fashion-mnist', '--limit', '100', '--metrics', 'geometry', '--baseline', 'none', '--max-memory', '100K', '--engine', 'tfjs', '-o', out, '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /fmnist-mlp: batch of \d+ instead of 64 images: about .* per image \(--max-memory 100 KiB\)/);
  assert.match(r.stdout, /fmnist-mlp {2}\(tfjs-layers, tfjs \w+\)/);
  // The batch that ran and the reduction rule are in the report and the summary, not only on stderr.
  const said = Number(/batch of (\d+) instead of 64/.exec(r.stderr)![1]);
  const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { models: { batchSize?: number; reductionRule?: string }[] };
  assert.equal(report.models[0]!.batchSize, said);
  assert.match(report.models[0]!.reductionRule ?? '', /^auto: /);
  assert.match(r.stdout, new RegExp(`reductions: auto: .*; batch ${said} \\(memory budget, --max-memory\\)`));
  const bad = cli(['audit', '-m', path.join(ROOT, 'models/fmnist-mlp/model.json'), '-d', 'fashion-mnist', '--limit', '100', '--max-memory', 'lots', '-o', out, '--force']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--max-memory expects a size such as 2G/);
});
