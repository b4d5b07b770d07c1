import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import { OnnxGraphBuilder } from '../src/runtime/onnx-build.js';
import { openOnnxModel, type OnnxRunner } from '../src/runtime/onnx.js';
import { selectLayers } from '../src/runtime/select.js';
import { Rng } from '../src/util/rng.js';
import { randn } from './helpers/random.js';

const dir = mkdtempSync(join(tmpdir(), 'layerprobe-onnx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

// ---- plain reference computations (one sample at a time) ----

/** y = W x + b with W [out, in] (Gemm with transB = 1). */
function dense(x: Float32Array, w: Float32Array, b: Float32Array, nIn: number, nOut: number): Float32Array {
  const y = new Float32Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let s = b[o]!;
    for (let i = 0; i < nIn; i++) s += w[o * nIn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

const relu = (x: Float32Array): Float32Array => x.map((v) => Math.max(0, v));

/** Valid 2-D convolution (cross-correlation), stride 1, on [C, H, W]. */
function conv2d(x: Float32Array, c: number, h: number, w: number, k: Float32Array, b: Float32Array, oc: number, kh: number, kw: number): Float32Array {
  const oh = h - kh + 1;
  const ow = w - kw + 1;
  const y = new Float32Array(oc * oh * ow);
  for (let o = 0; o < oc; o++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let s = b[o]!;
        for (let ci = 0; ci < c; ci++)
          for (let u = 0; u < kh; u++)
            for (let v = 0; v < kw; v++) s += k[((o * c + ci) * kh + u) * kw + v]! * x[(ci * h + i + u) * w + j + v]!;
        y[(o * oh + i) * ow + j] = s;
      }
  return y;
}

/** 2×2 max pool, stride 2, on [C, H, W]. */
function maxPool2(x: Float32Array, c: number, h: number, w: number): Float32Array {
  const oh = Math.floor(h / 2);
  const ow = Math.floor(w / 2);
  const y = new Float32Array(c * oh * ow);
  for (let ci = 0; ci < c; ci++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const at = (u: number, v: number): number => x[(ci * h + 2 * i + u) * w + 2 * j + v]!;
        y[(ci * oh + i) * ow + j] = Math.max(at(0, 0), at(0, 1), at(1, 0), at(1, 1));
      }
  return y;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Run `runner` on n random samples and compare every listed layer to `reference(sample)`. */
async function checkAgainstReference(
  runner: OnnxRunner,
  perSample: number[],
  reference: (x: Float32Array) => Record<string, Float32Array>,
  rng: Rng,
): Promise<void> {
  const per = perSample.reduce((p, d) => p * d, 1);
  for (const n of [1, 3, 8]) {
    const x = randn(rng, n * per);
    const refs = Array.from({ length: n }, (_, s) => reference(x.subarray(s * per, (s + 1) * per)));
    const ids = Object.keys(refs[0]!);
    const got = await runner.run({ data: x, shape: [n, ...perSample] }, ids);
    for (const id of ids) {
      const t = got.get(id)!;
      const rowLen = refs[0]![id]!.length;
      assert.equal(t.shape[0], n, `${id} batch`);
      assert.equal(t.data.length, n * rowLen, `${id} size`);
      for (let s = 0; s < n; s++) {
        const err = maxAbsDiff(t.data.subarray(s * rowLen, (s + 1) * rowLen), refs[s]![id]!);
        assert.ok(err <= 1e-5, `${id} sample ${s} of batch ${n}: max abs err ${err}`);
      }
    }
  }
}

// ---- the MLP: [N,6] → Gemm 6→5 → Relu → Gemm 5→4 → Relu → Gemm 4→3 ----

const mlpRng = new Rng(11);
const MLP = {
  w1: randn(mlpRng, 5 * 6, 0.5), b1: randn(mlpRng, 5, 0.1),
  w2: randn(mlpRng, 4 * 5, 0.5), b2: randn(mlpRng, 4, 0.1),
  w3: randn(mlpRng, 3 * 4, 0.5), b3: randn(mlpRng, 3, 0.1),
};

function mlpBytes(): Uint8Array {
  return new OnnxGraphBuilder('mlp')
    .input('x', ['N', 6])
    .initializer('w1', MLP.w1, [5, 6]).initializer('b1', MLP.b1, [5])
    .initializer('w2', MLP.w2, [4, 5]).initializer('b2', MLP.b2, [4])
    .initializer('w3', MLP.w3, [3, 4]).initializer('b3', MLP.b3, [3])
    .node('Gemm', ['x', 'w1', 'b1'], ['h1'], { transB: 1, alpha: 1, beta: 1 })
    .node('Relu', ['h1'], ['a1'])
    .node('Gemm', ['a1', 'w2', 'b2'], ['h2'], { transB: 1 })
    .node('Relu', ['h2'], ['a2'])
    .node('Gemm', ['a2', 'w3', 'b3'], ['logits'], { transB: 1 })
    .output('logits', ['N', 3])
    .toBytes();
}

function mlpReference(x: Float32Array): Record<string, Float32Array> {
  const h1 = dense(x, MLP.w1, MLP.b1, 6, 5);
  const a1 = relu(h1);
  const h2 = dense(a1, MLP.w2, MLP.b2, 5, 4);
  const a2 = relu(h2);
  return { h1, a1, h2, a2, logits: dense(a2, MLP.w3, MLP.b3, 4, 3) };
}

// ---- the CNN: [1,1,6,6] (batch fixed at 1) → Conv 2@3×3 → Relu → MaxPool 2×2 → flatten → Gemm 8→3 ----

const cnnRng = new Rng(23);
const CNN = { k: randn(cnnRng, 2 * 9, 0.5), kb: randn(cnnRng, 2, 0.1), w: randn(cnnRng, 3 * 8, 0.5), b: randn(cnnRng, 3, 0.1) };

/**
 * `flatten`: 'Flatten' (batch-agnostic) or a Reshape to a hard-coded [batch, 8], which breaks
 * the batch rewrite.
 */
function cnnBytes(flatten: 'Flatten' | 'ReshapeFixed', batch = 1): Uint8Array {
  const b = new OnnxGraphBuilder('cnn')
    .input('img', [batch, 1, 6, 6])
    .initializer('k', CNN.k, [2, 1, 3, 3]).initializer('kb', CNN.kb, [2])
    .initializer('w', CNN.w, [3, 8]).initializer('b', CNN.b, [3])
    .node('Conv', ['img', 'k', 'kb'], ['c1'], { kernel_shape: [3, 3], pads: [0, 0, 0, 0], strides: [1, 1] })
    .node('Relu', ['c1'], ['r1'])
    .node('MaxPool', ['r1'], ['p1'], { kernel_shape: [2, 2], strides: [2, 2] });
  if (flatten === 'Flatten') b.node('Flatten', ['p1'], ['f'], { axis: 1 });
  else b.initializer('shape', new BigInt64Array([BigInt(batch), 8n]), [2]).node('Reshape', ['p1', 'shape'], ['f']);
  return b.node('Gemm', ['f', 'w', 'b'], ['out'], { transB: 1 }).output('out', [batch, 3]).toBytes();
}

function cnnReference(x: Float32Array): Record<string, Float32Array> {
  const c1 = conv2d(x, 1, 6, 6, CNN.k, CNN.kb, 2, 3, 3);
  const r1 = relu(c1);
  const p1 = maxPool2(r1, 2, 4, 4);
  return { c1, r1, p1, f: p1, out: dense(p1, CNN.w, CNN.b, 8, 3) };
}

test('MLP built with the builder: every activation matches a direct computation', async () => {
  const runner = await openOnnxModel(write('mlp.onnx', mlpBytes()));
  try {
    assert.equal(runner.format, 'onnx');
    assert.match(runner.backend, /^onnxruntime-node \d+\.\d+\.\d+ cpu$/);
    assert.equal(runner.batchMode, 'native');
    assert.deepEqual(runner.inputShape, [null, 6]);
    const layers = runner.layers();
    assert.deepEqual(layers.map((l) => [l.id, l.op, l.index]), [
      ['x', 'Input', 0], ['h1', 'Gemm', 1], ['a1', 'Relu', 2], ['h2', 'Gemm', 3], ['a2', 'Relu', 4], ['logits', 'Gemm', 5],
    ]);
    assert.deepEqual(layers.map((l) => l.shape), [[null, 6], [null, 5], [null, 5], [null, 4], [null, 4], [null, 3]]);
    assert.ok(layers.every((l) => l.kind === 'dense' && l.layout === 'NC'));
    assert.deepEqual(layers.filter((l) => l.isOutput).map((l) => l.id), ['logits']);
    assert.deepEqual(selectLayers(layers).map((l) => l.id), ['a1', 'a2']);
    await checkAgainstReference(runner, [6], mlpReference, new Rng(1));
  } finally {
    await runner.dispose();
  }
});

test('CNN with batch fixed at 1: the batch is rewritten and activations match', async () => {
  const runner = await openOnnxModel(write('cnn.onnx', cnnBytes('Flatten')), { threads: 1 });
  try {
    assert.equal(runner.batchMode, 'rewritten');
    assert.deepEqual(runner.inputShape, [null, 1, 6, 6]);
    const layers = runner.layers();
    assert.deepEqual(layers.map((l) => [l.id, l.op, l.kind, l.layout]), [
      ['img', 'Input', 'conv', 'NCHW'], ['c1', 'Conv', 'conv', 'NCHW'], ['r1', 'Relu', 'conv', 'NCHW'],
      ['p1', 'MaxPool', 'conv', 'NCHW'], ['f', 'Flatten', 'dense', 'NC'], ['out', 'Gemm', 'dense', 'NC'],
    ]);
    assert.deepEqual(layers.find((l) => l.id === 'p1')!.shape, [null, 2, 2, 2]);
    // Relu → MaxPool is one block, and the pool only flattens into the head: the head's input stands for it.
    assert.deepEqual(selectLayers(layers).map((l) => l.id), ['f']);
    await checkAgainstReference(runner, [1, 6, 6], cnnReference, new Rng(2));
    // A flat per-sample layout with the same element count is accepted too.
    const flat = await runner.run({ data: new Float32Array(2 * 36).fill(0.5), shape: [2, 36] }, ['out', 'img']);
    assert.deepEqual(flat.get('out')!.shape, [2, 3]);
    assert.deepEqual(flat.get('img')!.shape, [2, 1, 6, 6]);
  } finally {
    await runner.dispose();
  }
});

test('CNN with a Reshape hard-coding batch 1 falls back to one sample at a time', async () => {
  const runner = await openOnnxModel(write('cnn-reshape1.onnx', cnnBytes('ReshapeFixed')));
  try {
    assert.equal(runner.batchMode, 'per-sample');
    assert.deepEqual(selectLayers(runner.layers()).map((l) => l.id), ['f']);
    await checkAgainstReference(runner, [1, 6, 6], cnnReference, new Rng(3));
  } finally {
    await runner.dispose();
  }
});

test('a batch fixed at 2 that cannot be rewritten runs in padded chunks of 2', async () => {
  const runner = await openOnnxModel(write('cnn-reshape2.onnx', cnnBytes('ReshapeFixed', 2)));
  try {
    assert.equal(runner.batchMode, 'per-sample');
    assert.deepEqual(runner.inputShape, [null, 1, 6, 6]);
    await checkAgainstReference(runner, [1, 6, 6], cnnReference, new Rng(4));
  } finally {
    await runner.dispose();
  }
});

test('default selection: written-out GELU and SiLU count as activations, input normalisation does not', async () => {
  const rng = new Rng(9);
  const scalar = (v: number): Float32Array => new Float32Array([v]);
  const bytes = new OnnxGraphBuilder('patterns')
    .input('x', ['N', 4])
    .initializer('mean', scalar(0.5), []).initializer('sqrt2', scalar(Math.SQRT2), []).initializer('one', scalar(1), []).initializer('half', scalar(0.5), [])
    .initializer('w1', randn(rng, 16), [4, 4]).initializer('w2', randn(rng, 16), [4, 4]).initializer('w3', randn(rng, 8), [4, 2])
    .node('Sub', ['x', 'mean'], ['xn'])
    .node('Relu', ['xn'], ['xr'])
    .node('MatMul', ['xr', 'w1'], ['h1'])
    .node('Div', ['h1', 'sqrt2'], ['h1s'])
    .node('Erf', ['h1s'], ['e'])
    .node('Add', ['e', 'one'], ['e1'])
    .node('Mul', ['h1', 'e1'], ['g0'])
    .node('Mul', ['g0', 'half'], ['gelu'])
    .node('MatMul', ['gelu', 'w2'], ['h2'])
    .node('Sigmoid', ['h2'], ['s'])
    .node('Mul', ['h2', 's'], ['silu'])
    .node('MatMul', ['silu', 'w3'], ['logits'])
    .node('Tanh', ['logits'], ['out'])
    .output('out', ['N', 2])
    .toBytes();
  const runner = await openOnnxModel(write('patterns.onnx', bytes));
  try {
    const layers = runner.layers();
    assert.deepEqual(layers.map((l) => l.id), ['x', 'xn', 'xr', 'h1', 'h1s', 'e', 'e1', 'g0', 'gelu', 'h2', 's', 'silu', 'logits', 'out']);
    assert.deepEqual(selectLayers(layers).map((l) => l.id), ['gelu', 'silu']);
    // The GELU subgraph computes x·Φ(x): check it against erf-free values at a few points.
    const got = await runner.run({ data: new Float32Array([0, 1, -1, 2]), shape: [1, 4] }, ['h1', 'gelu']);
    const h1 = got.get('h1')!.data;
    const gelu = got.get('gelu')!.data;
    for (let i = 0; i < 4; i++) {
      const v = h1[i]!;
      const ref = v * normalCdf(v);
      assert.ok(Math.abs(gelu[i]! - ref) < 1e-5, `gelu(${v}) = ${gelu[i]} vs ${ref}`);
    }
  } finally {
    await runner.dispose();
  }
});

/** Φ(x) by Simpson's rule on the normal density, accurate far beyond float32. */
function normalCdf(x: number): number {
  const steps = 2000;
  const a = 0;
  const h = (x - a) / steps;
  const f = (t: number): number => Math.exp(-t * t / 2) / Math.sqrt(2 * Math.PI);
  let s = f(a) + f(x);
  for (let i = 1; i < steps; i++) s += f(a + i * h) * (i % 2 ? 4 : 2);
  return 0.5 + (s * h) / 3;
}

test('bad files: corrupt or truncated → RuntimeFailure on one line, missing → UsageError', async () => {
  const rng = new Rng(5);
  const junk = new Uint8Array(4096).map(() => rng.int(256));
  const valid = mlpBytes();
  const cases: [string, Uint8Array][] = [
    ['random.onnx', junk],
    ['truncated.onnx', valid.subarray(0, Math.floor(valid.length / 2))],
    ['truncated-tail.onnx', valid.subarray(0, valid.length - 7)],
    ['empty.onnx', new Uint8Array(0)],
    ['unknown-op.onnx', new OnnxGraphBuilder().input('x', ['N', 2]).node('NoSuchOp', ['x'], ['y']).output('y').toBytes()],
  ];
  for (const [name, bytes] of cases) {
    const p = write(name, bytes);
    await assert.rejects(openOnnxModel(p), (e: unknown) => {
      assert.ok(e instanceof RuntimeFailure, `${name}: ${String(e)}`);
      assert.equal(e.exitCode, 1);
      assert.ok(e.message.startsWith(`model ${p} is not a valid ONNX model: `), `${name}: ${e.message}`);
      assert.ok(!e.message.includes('\n'), `${name}: message spans lines`);
      return true;
    });
  }
  await assert.rejects(openOnnxModel(join(dir, 'nope.onnx')), (e: unknown) => e instanceof UsageError && e.exitCode === 2 && /not found/.test(e.message));
  await assert.rejects(openOnnxModel(dir), UsageError);
});

test('run: unknown layer ids and wrong input sizes are usage errors', async () => {
  const p = write('mlp-errors.onnx', mlpBytes());
  const runner = await openOnnxModel(p);
  try {
    const x = { data: new Float32Array(12), shape: [2, 6] };
    await assert.rejects(runner.run(x, ['a1', 'a_1']), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /^layer `a_1` not found in model; did you mean `a1`/);
      assert.equal(e.hint, `run \`layerprobe layers ${p}\` to list layers`);
      return true;
    });
    await assert.rejects(runner.run({ data: new Float32Array(14), shape: [2, 7] }, ['a1']), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, 'input shape [2,7] does not fit model input [N,6]');
      return true;
    });
    await assert.rejects(runner.run({ data: new Float32Array(11), shape: [2, 6] }, ['a1']), UsageError);
    const empty = await runner.run({ data: new Float32Array(0), shape: [0, 6] }, ['a2']);
    assert.deepEqual(empty.get('a2')!.shape, [0, 4]);
  } finally {
    await runner.dispose();
  }
});

// ---- the real DeepEverest MNIST CNN ----

const ASSETS = join(import.meta.dirname, '..', '..', 'shared', 'assets');
const DEEPEVEREST = join(ASSETS, 'models', 'mnist-cnn-deepeverest.onnx');
const MNIST_IMAGES = join(ASSETS, 'data', 'mnist', 't10k-images-idx3-ubyte.gz');
const MNIST_LABELS = join(ASSETS, 'data', 'mnist', 't10k-labels-idx1-ubyte.gz');

function readIdx(path: string, magic: number): { dims: number[]; data: Uint8Array } {
  const buf = gunzipSync(readFileSync(path));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  assert.equal(view.getUint32(0), magic, `${path}: IDX magic`);
  const rank = buf[3]!;
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, data: buf.subarray(4 + 4 * rank) };
}

test('DeepEverest MNIST CNN: ≥ 97% on t10k[0:2000] in batches of 64, right intermediate shapes', async (t) => {
  for (const f of [DEEPEVEREST, MNIST_IMAGES, MNIST_LABELS]) {
    if (!existsSync(f)) {
      t.skip(`needs ../shared/assets/${f.slice(ASSETS.length + 1)} (absent)`);
      return;
    }
  }
  const images = readIdx(MNIST_IMAGES, 2051);
  const labels = readIdx(MNIST_LABELS, 2049);
  assert.deepEqual(images.dims, [10000, 28, 28]);

  const runner = await openOnnxModel(DEEPEVEREST);
  try {
    t.diagnostic(`batch mode: ${runner.batchMode}`);
    assert.notEqual(runner.batchMode, 'native');
    assert.deepEqual(runner.inputShape, [null, 1, 28, 28]);
    const layers = runner.layers();
    const shapeOf = (id: string): (number | null)[] => layers.find((l) => l.id === id)!.shape;
    assert.deepEqual(layers.map((l) => l.op), ['Input', 'Conv', 'MaxPool', 'Relu', 'Conv', 'MaxPool', 'Relu', 'Reshape', 'Gemm', 'Relu', 'Gemm', 'LogSoftmax']);
    // Block 1 output, block 2 output, fc1 after its Relu.
    assert.deepEqual(selectLayers(layers).map((l) => l.id), ['input', 'onnx::Reshape_14', 'x']);
    assert.deepEqual(layers.filter((l) => l.isOutput).map((l) => l.id), ['20']);

    const n = 2000;
    const batch = 64;
    const all = layers.map((l) => l.id);
    const fetch = ['20', ...selectLayers(layers).map((l) => l.id)];
    let correct = 0;
    let seconds = 0;
    for (let start = 0; start < n; start += batch) {
      const m = Math.min(batch, n - start);
      const x = new Float32Array(m * 784);
      for (let i = 0; i < x.length; i++) x[i] = images.data[start * 784 + i]! / 255;
      const t0 = process.hrtime.bigint();
      const out = await runner.run({ data: x, shape: [m, 1, 28, 28] }, start === 0 ? all : fetch);
      // The first batch fetches every layer and warms the session up: not timed.
      if (start > 0) seconds += Number(process.hrtime.bigint() - t0) / 1e9;
      if (start === 0) {
        const want: Record<string, number[]> = {
          'onnx::MaxPool_9': [m, 10, 24, 24], 'onnx::Relu_10': [m, 10, 12, 12], input: [m, 10, 12, 12],
          'input.4': [m, 20, 8, 8], 'onnx::Relu_13': [m, 20, 4, 4], 'onnx::Reshape_14': [m, 20, 4, 4],
          'onnx::Gemm_16': [m, 320], 'onnx::Relu_17': [m, 50], x: [m, 50], 'x.3': [m, 10], '20': [m, 10],
        };
        for (const [id, shape] of Object.entries(want)) {
          assert.deepEqual(out.get(id)!.shape, shape, id);
          assert.deepEqual(shapeOf(id), [null, ...shape.slice(1)], id);
        }
      }
      const logp = out.get('20')!.data;
      for (let s = 0; s < m; s++) {
        let best = 0;
        for (let k = 1; k < 10; k++) if (logp[s * 10 + k]! > logp[s * 10 + best]!) best = k;
        if (best === labels.data[start + s]) correct++;
      }
    }
    const acc = correct / n;
    t.diagnostic(`accuracy on t10k[0:${n}]: ${(100 * acc).toFixed(2)}% (${correct}/${n})`);
    t.diagnostic(`throughput (output + default layers, batches of ${batch}): ${Math.round((n - batch) / seconds)} images/s`);
    assert.ok(acc >= 0.97, `accuracy ${acc}`);
  } finally {
    await runner.dispose();
  }
});

test('DeepEverest truncated on disk → RuntimeFailure', async (t) => {
  if (!existsSync(DEEPEVEREST)) {
    t.skip('needs ../shared/assets/models/mnist-cnn-deepeverest.onnx (absent)');
    return;
  }
  const bytes = readFileSync(DEEPEVEREST);
  for (const frac of [0.1, 0.5, 0.97]) {
    const p = write(`deepeverest-${frac}.onnx`, bytes.subarray(0, Math.floor(bytes.length * frac)));
    await assert.rejects(openOnnxModel(p), (e: unknown) => e instanceof RuntimeFailure && /is not a valid ONNX model: /.test(e.message) && !e.message.includes('\n'));
  }
});
