import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import { loadTf, type Tf } from '../src/runtime/backend.js';
import { defaultSelection } from '../src/runtime/tfjs-default-layers.js';
import { loadArtifacts, requiredWeightBytes, saveToDir } from '../src/runtime/tfjs-io.js';
import { detectTfjsFormat, openTfjsModel } from '../src/runtime/tfjs.js';
import { checkLayersTopology } from '../src/runtime/tfjs-topology.js';
import type { ModelRunner } from '../src/runtime/types.js';
import { Rng } from '../src/util/rng.js';

const ASSETS = path.resolve(import.meta.dirname, '../../shared/assets');

// ─── a tiny CNN with known weights, and the same network written out with loops ───

interface Weights {
  k1: Float32Array; // [3,3,1,3]
  b1: Float32Array; // [3]
  w2: Float32Array; // [12,5]
  b2: Float32Array; // [5]
  w3: Float32Array; // [5,3]
  b3: Float32Array; // [3]
}

function makeWeights(seed: number): Weights {
  const rng = new Rng(seed);
  const r = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * s);
  return { k1: r(27, 0.6), b1: r(3, 0.3), w2: r(60, 0.5), b2: r(5, 0.3), w3: r(15, 0.5), b3: r(3, 0.3) };
}

function makeInput(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * 36 }, () => rng.next());
}

/** conv 3×3 valid + relu → maxpool 2 → flatten (HWC) → dense 5 relu → dense 3, per sample. */
function reference(x: Float32Array, n: number, w: Weights): Record<'conv' | 'pool' | 'flat' | 'hidden' | 'logits', Float32Array> {
  const conv = new Float32Array(n * 4 * 4 * 3);
  const pool = new Float32Array(n * 2 * 2 * 3);
  const hidden = new Float32Array(n * 5);
  const logits = new Float32Array(n * 3);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++)
        for (let c = 0; c < 3; c++) {
          let acc = w.b1[c]!;
          for (let di = 0; di < 3; di++) for (let dj = 0; dj < 3; dj++) acc += x[s * 36 + (i + di) * 6 + (j + dj)]! * w.k1[(di * 3 + dj) * 3 + c]!;
          conv[((s * 4 + i) * 4 + j) * 3 + c] = Math.max(0, acc);
        }
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++)
        for (let c = 0; c < 3; c++) {
          let m = -Infinity;
          for (let di = 0; di < 2; di++) for (let dj = 0; dj < 2; dj++) m = Math.max(m, conv[((s * 4 + 2 * i + di) * 4 + 2 * j + dj) * 3 + c]!);
          pool[((s * 2 + i) * 2 + j) * 3 + c] = m;
        }
    for (let u = 0; u < 5; u++) {
      let acc = w.b2[u]!;
      for (let f = 0; f < 12; f++) acc += pool[s * 12 + f]! * w.w2[f * 5 + u]!;
      hidden[s * 5 + u] = Math.max(0, acc);
    }
    for (let o = 0; o < 3; o++) {
      let acc = w.b3[o]!;
      for (let u = 0; u < 5; u++) acc += hidden[s * 5 + u]! * w.w3[u * 3 + o]!;
      logits[s * 3 + o] = acc;
    }
  }
  return { conv, pool, flat: pool.slice(), hidden, logits };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function saveTinyLayersModel(tf: Tf, w: Weights, dir: string): Promise<void> {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ name: 'conv', inputShape: [6, 6, 1], filters: 3, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ name: 'pool', poolSize: 2 }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.dense({ name: 'hidden', units: 5, activation: 'relu' }),
      tf.layers.dense({ name: 'logits', units: 3 }),
    ],
  });
  const set = (name: string, kernel: Float32Array, kshape: number[], bias: Float32Array): void => {
    const ts = [tf.tensor(kernel, kshape), tf.tensor1d(bias)];
    model.getLayer(name).setWeights(ts);
    tf.dispose(ts);
  };
  set('conv', w.k1, [3, 3, 1, 3], w.b1);
  set('hidden', w.w2, [12, 5], w.b2);
  set('logits', w.w3, [5, 3], w.b3);
  await model.save(saveToDir(dir));
  model.dispose();
}

/** The same network as a hand-written GraphDef JSON, using the fused ops the TF.js converter emits. */
async function saveTinyGraphModel(w: Weights, dir: string): Promise<void> {
  const s = (v: string): { s: string } => ({ s: Buffer.from(v).toString('base64') });
  const ints = (v: number[]): { list: { i: string[] } } => ({ list: { i: v.map(String) } });
  const slist = (v: string[]): { list: { s: string[] } } => ({ list: { s: v.map((x) => Buffer.from(x).toString('base64')) } });
  const f32 = { type: 1 };
  const konst = (name: string, shape: number[], dtype = 1): object => ({
    name,
    op: 'Const',
    attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } } },
  });
  const node = [
    { name: 'x', op: 'Placeholder', attr: { dtype: f32, shape: { shape: { dim: [-1, 6, 6, 1].map((d) => ({ size: String(d) })) } } } },
    konst('k1', [3, 3, 1, 3]),
    konst('b1', [3]),
    konst('w2', [12, 5]),
    konst('b2', [5]),
    konst('w3', [5, 3]),
    konst('b3', [3]),
    konst('flat/shape', [2], 3),
    {
      name: 'conv',
      op: '_FusedConv2D',
      input: ['x', 'k1', 'b1'],
      attr: {
        T: f32,
        strides: ints([1, 1, 1, 1]),
        dilations: ints([1, 1, 1, 1]),
        padding: s('VALID'),
        data_format: s('NHWC'),
        fused_ops: slist(['BiasAdd', 'Relu']),
        num_args: { i: '1' },
        epsilon: { f: 0 },
      },
    },
    { name: 'pool', op: 'MaxPool', input: ['conv'], attr: { T: f32, ksize: ints([1, 2, 2, 1]), strides: ints([1, 2, 2, 1]), padding: s('VALID'), data_format: s('NHWC') } },
    { name: 'flat', op: 'Reshape', input: ['pool', 'flat/shape'], attr: { T: f32, Tshape: { type: 3 } } },
    {
      name: 'hidden',
      op: '_FusedMatMul',
      input: ['flat', 'w2', 'b2'],
      attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: slist(['BiasAdd', 'Relu']), num_args: { i: '1' }, epsilon: { f: 0 } },
    },
    { name: 'logits/mm', op: 'MatMul', input: ['hidden', 'w3'], attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false } } },
    { name: 'logits', op: 'BiasAdd', input: ['logits/mm', 'b3'], attr: { T: f32, data_format: s('NHWC') } },
  ];
  const specs = [
    { name: 'k1', shape: [3, 3, 1, 3], dtype: 'float32' },
    { name: 'b1', shape: [3], dtype: 'float32' },
    { name: 'w2', shape: [12, 5], dtype: 'float32' },
    { name: 'b2', shape: [5], dtype: 'float32' },
    { name: 'w3', shape: [5, 3], dtype: 'float32' },
    { name: 'b3', shape: [3], dtype: 'float32' },
    { name: 'flat/shape', shape: [2], dtype: 'int32' },
  ];
  const parts = [w.k1, w.b1, w.w2, w.b2, w.w3, w.b3].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  parts.push(Buffer.from(Int32Array.from([-1, 12]).buffer));
  await fs.mkdir(dir, { recursive: true });
  // No `format` field: the node list alone must identify a graph model, as in pre-1.0 files.
  await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: { node, versions: {} }, weightsManifest: [{ paths: ['group1-shard1of1'], weights: specs }] }));
  await fs.writeFile(path.join(dir, 'group1-shard1of1'), Buffer.concat(parts));
}

let tf: Tf;
let tmp: string;

before(async () => {
  tf = (await loadTf()).tf;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'layerprobe-tfjs-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function checkAgainstReference(runner: ModelRunner, ids: Record<'conv' | 'pool' | 'flat' | 'hidden' | 'logits', string>, w: Weights): Promise<void> {
  const startTensors = tf.memory().numTensors;
  for (const n of [1, 5]) {
    const x = makeInput(n, 100 + n);
    const ref = reference(x, n, w);
    const got = await runner.run({ data: x, shape: [n, 6, 6, 1] }, Object.values(ids));
    for (const [k, id] of Object.entries(ids) as [keyof typeof ref, string][]) {
      const t = got.get(id)!;
      assert.equal(t.shape[0], n, `${id} batch`);
      const err = maxAbsDiff(t.data, ref[k]);
      assert.ok(err <= 1e-5, `${id} (batch ${n}) max abs err ${err}`);
    }
    assert.equal(tf.memory().numTensors, startTensors, 'no tensors leak across batches');
  }
  // A flat [n, 36] batch is reshaped to the model input.
  const flat = await runner.run({ data: makeInput(2, 7), shape: [2, 36] }, [ids.logits]);
  assert.deepEqual(flat.get(ids.logits)!.shape, [2, 3]);
  assert.equal(tf.memory().numTensors, startTensors);
}

describe('tfjs runner: tiny models with known weights', () => {
  const w = makeWeights(42);

  test('layers model saved with saveToDir matches a loop implementation', async () => {
    const dir = path.join(tmp, 'tiny-layers');
    await saveTinyLayersModel(tf, w, dir);
    const before = tf.memory().numTensors;
    const runner = await openTfjsModel(path.join(dir, 'model.json'));
    assert.equal(runner.format, 'tfjs-layers');
    assert.match(runner.backend, /^tfjs /);
    assert.deepEqual(runner.inputShape, [null, 6, 6, 1]);
    const ls = runner.layers();
    assert.deepEqual(
      ls.map((l) => [l.id, l.op, l.kind, l.layout]),
      [
        ['conv', 'Conv2D', 'conv', 'NHWC'],
        ['pool', 'MaxPooling2D', 'conv', 'NHWC'],
        ['flat', 'Flatten', 'dense', 'NC'],
        ['hidden', 'Dense', 'dense', 'NC'],
        ['logits', 'Dense', 'dense', 'NC'],
      ],
    );
    assert.deepEqual(ls.map((l) => l.shape), [[null, 4, 4, 3], [null, 2, 2, 3], [null, 12], [null, 5], [null, 3]]);
    assert.deepEqual(ls.map((l) => l.index), [0, 1, 2, 3, 4]);
    assert.deepEqual(ls.filter((l) => l.defaultSelected).map((l) => l.id), ['pool', 'hidden']);
    assert.deepEqual(ls.filter((l) => l.isOutput).map((l) => l.id), ['logits']);
    await checkAgainstReference(runner, { conv: 'conv', pool: 'pool', flat: 'flat', hidden: 'hidden', logits: 'logits' }, w);
    await runner.dispose();
    assert.equal(tf.memory().numTensors, before, 'dispose frees the weights');
  });

  test('hand-written graph model (fused ops) matches the same loops', async () => {
    const dir = path.join(tmp, 'tiny-graph');
    await saveTinyGraphModel(w, dir);
    const before = tf.memory().numTensors;
    const runner = await openTfjsModel(path.join(dir, 'model.json'));
    assert.equal(runner.format, 'tfjs-graph');
    assert.deepEqual(runner.inputShape, [null, 6, 6, 1]);
    const ls = runner.layers();
    assert.deepEqual(
      ls.map((l) => [l.id, l.op, l.shape]),
      [
        ['conv', '_FusedConv2D', [null, 4, 4, 3]],
        ['pool', 'MaxPool', [null, 2, 2, 3]],
        ['flat', 'Reshape', [null, 12]],
        ['hidden', '_FusedMatMul', [null, 5]],
        ['logits/mm', 'MatMul', [null, 3]],
        ['logits', 'BiasAdd', [null, 3]],
      ],
    );
    assert.deepEqual(ls.filter((l) => l.defaultSelected).map((l) => l.id), ['pool', 'hidden']);
    assert.deepEqual(ls.filter((l) => l.isOutput).map((l) => l.id), ['logits']);
    await checkAgainstReference(runner, { conv: 'conv', pool: 'pool', flat: 'flat', hidden: 'hidden', logits: 'logits' }, w);
    await runner.dispose();
    assert.equal(tf.memory().numTensors, before, 'dispose frees the weights');
  });

  test('unknown layer → UsageError with a suggestion; wrong input size → UsageError', async () => {
    const runner = await openTfjsModel(path.join(tmp, 'tiny-layers', 'model.json'));
    try {
      await assert.rejects(runner.run({ data: makeInput(1, 1), shape: [1, 6, 6, 1] }, ['hiden']), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, /layer `hiden` not found.*did you mean `hidden`/);
        assert.match(e.hint ?? '', /layerprobe layers/);
        return true;
      });
      await assert.rejects(runner.run({ data: new Float32Array(2 * 35), shape: [2, 35] }, ['hidden']), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.message, 'input shape [2,35] does not fit model input [null,6,6,1]');
        return true;
      });
      await assert.rejects(runner.run({ data: new Float32Array(10), shape: [1, 36] }, ['hidden']), UsageError);
    } finally {
      await runner.dispose();
    }
  });
});

describe('tfjs file IO errors', () => {
  async function copyTiny(name: string): Promise<string> {
    const dir = path.join(tmp, name);
    await fs.cp(path.join(tmp, 'tiny-layers'), dir, { recursive: true });
    return dir;
  }

  test('missing model.json → UsageError', async () => {
    await assert.rejects(openTfjsModel(path.join(tmp, 'nope', 'model.json')), UsageError);
  });

  test('missing shard → RuntimeFailure naming it', async () => {
    const dir = await copyTiny('missing-shard');
    const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    json.weightsManifest[0]!.paths = ['group1-shard1of1'];
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    await assert.rejects(openTfjsModel(path.join(dir, 'model.json')), (e: unknown) => {
      assert.ok(e instanceof RuntimeFailure);
      assert.match(e.message, /^weight shard `group1-shard1of1` listed in model\.json is missing \(expected at .*group1-shard1of1\)$/);
      return true;
    });
  });

  test('truncated shard → RuntimeFailure', async () => {
    const dir = await copyTiny('truncated');
    const bin = await fs.readFile(path.join(dir, 'weights.bin'));
    await fs.writeFile(path.join(dir, 'weights.bin'), bin.subarray(0, bin.length - 8));
    await assert.rejects(openTfjsModel(path.join(dir, 'model.json')), (e: unknown) => e instanceof RuntimeFailure && /truncated/.test(e.message));
  });

  test('an unknown layer class → RuntimeFailure naming the class, without TF.js\'s list of generic reasons', async () => {
    const dir = await copyTiny('unknown-class');
    const text = await fs.readFile(path.join(dir, 'model.json'), 'utf8');
    assert.match(text, /"class_name":\s*"Dense"/);
    await fs.writeFile(path.join(dir, 'model.json'), text.replace(/"class_name":(\s*)"Dense"/, '"class_name":$1"MyDense"'));
    await assert.rejects(openTfjsModel(path.join(dir, 'model.json')), (e: unknown) => e instanceof RuntimeFailure && /uses layer class `MyDense`, which TF\.js does not know$/.test(e.message));
  });

  test('a shard longer than the manifest needs → RuntimeFailure (the weights belong to another model)', async () => {
    const dir = await copyTiny('longer');
    const bin = await fs.readFile(path.join(dir, 'weights.bin'));
    await fs.writeFile(path.join(dir, 'weights.bin'), Buffer.concat([bin, Buffer.alloc(8)]));
    await assert.rejects(openTfjsModel(path.join(dir, 'model.json')), (e: unknown) => e instanceof RuntimeFailure && /do not match its manifest: the shards hold \d+ bytes, the manifest needs \d+/.test(e.message));
  });

  test('invalid JSON → RuntimeFailure naming the file', async () => {
    const dir = await copyTiny('badjson');
    await fs.writeFile(path.join(dir, 'model.json'), '{"modelTopology": {');
    await assert.rejects(openTfjsModel(path.join(dir, 'model.json')), (e: unknown) => {
      assert.ok(e instanceof RuntimeFailure);
      assert.match(e.message, /badjson\/model\.json` is not valid JSON/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });

  test('neither layers nor graph model → RuntimeFailure', async () => {
    const dir = await copyTiny('neither');
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: { hello: 1 }, weightsManifest: [] }));
    await assert.rejects(openTfjsModel(path.join(dir, 'model.json')), (e: unknown) => e instanceof RuntimeFailure && /neither/.test(e.message));
  });

  test('loadArtifacts concatenates shards in order; saveToDir round-trips', async () => {
    const dir = await copyTiny('sharded');
    const bin = await fs.readFile(path.join(dir, 'weights.bin'));
    await fs.writeFile(path.join(dir, 'a.bin'), bin.subarray(0, 100));
    await fs.writeFile(path.join(dir, 'b.bin'), bin.subarray(100));
    await fs.rm(path.join(dir, 'weights.bin'));
    const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    json.weightsManifest[0]!.paths = ['a.bin', './b.bin'];
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    const art = await loadArtifacts(path.join(dir, 'model.json'));
    assert.ok(art.weightData instanceof ArrayBuffer);
    assert.deepEqual(Buffer.from(art.weightData), bin);
    assert.equal(art.format, 'layers-model');
    const out = path.join(tmp, 'resaved');
    await saveToDir(out).save!(art);
    assert.deepEqual(await fs.readFile(path.join(out, 'weights.bin')), bin);
    assert.deepEqual((await fs.readdir(out)).sort(), ['model.json', 'weights.bin'], 'no temp files left behind');
  });

  test('format detection and manifest sizes', () => {
    assert.equal(detectTfjsFormat({ format: 'graph-model', modelTopology: {} }), 'tfjs-graph');
    assert.equal(detectTfjsFormat({ modelTopology: { class_name: 'Model', config: {} } }), 'tfjs-layers');
    assert.equal(detectTfjsFormat({ modelTopology: { keras_version: '2.2.2', model_config: { class_name: 'Model', config: {} } } }), 'tfjs-layers');
    assert.equal(detectTfjsFormat({ modelTopology: { node: [] } }), 'tfjs-graph');
    assert.equal(detectTfjsFormat({ modelTopology: {} }), null);
    assert.equal(
      requiredWeightBytes([
        { name: 'a', shape: [2, 3], dtype: 'float32' },
        { name: 'b', shape: [10], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } },
        { name: 'c', shape: [4], dtype: 'float32', quantization: { dtype: 'float16' } },
      ]),
      24 + 10 + 8,
    );
  });

  test('default selection: activation after linear layer, pool after activation, shared activations', () => {
    const n = (id: string, inputs: string[], o: Partial<{ activated: boolean; pool: boolean; isOutput: boolean }> = {}) => ({
      id,
      op: 'Conv2D',
      rank: 4,
      inputs,
      activated: false,
      pool: false,
      block: false,
      isOutput: false,
      ...o,
    });
    const sel = defaultSelection([
      n('conv', []),
      n('act', ['conv'], { activated: true }),
      n('pool', ['act'], { pool: true }),
      n('conv2', ['pool'], { activated: true }),
      n('skip', ['conv2', 'pool']),
      n('pool2', ['conv2'], { pool: true }),
      n('out', ['pool2'], { activated: true, isOutput: true }),
    ]);
    // conv2 also feeds `skip`, so it stays alongside pool2.
    assert.deepEqual([...sel].sort(), ['conv2', 'pool', 'pool2']);
  });
});

// ─── real third-party models on MNIST ───

function loadMnist(count: number): { x: Float32Array; labels: Uint8Array } {
  const img = gunzipSync(readFileSync(path.join(ASSETS, 'data/mnist/t10k-images-idx3-ubyte.gz')));
  const lab = gunzipSync(readFileSync(path.join(ASSETS, 'data/mnist/t10k-labels-idx1-ubyte.gz')));
  assert.equal(img.readUInt32BE(0), 2051);
  assert.equal(lab.readUInt32BE(0), 2049);
  const x = new Float32Array(count * 784);
  for (let i = 0; i < x.length; i++) x[i] = img[16 + i]! / 255;
  return { x, labels: lab.subarray(8, 8 + count) };
}

const REAL = [
  {
    rel: 'models/lenet-tensorspace-layers/mnist.json',
    format: 'tfjs-layers',
    itemShape: [28, 28, 1],
    minAcc: 0.96,
    selected: ['max_pooling2d_MaxPooling2D1', 'max_pooling2d_MaxPooling2D2', 'dense_Dense1', 'dense_Dense2'],
    output: 'dense_Dense3',
  },
  {
    rel: 'models/lenet-keras-layers/model.json',
    format: 'tfjs-layers',
    itemShape: [28, 28],
    minAcc: 0.96,
    selected: ['MaxPooling2D_1', 'MaxPooling2D_2', 'Dense_1', 'Dense_2'],
    output: 'Softmax',
  },
  {
    rel: 'models/lenet-tf-graph/model.json',
    format: 'tfjs-graph',
    itemShape: [28, 28, 1],
    minAcc: 0.94,
    selected: ['MyMaxPooling2D_1', 'MyMaxPooling2D_2', 'MyDense_1', 'MyDense_2'],
    output: 'MySoftMax',
  },
] as const;

describe('tfjs runner: real LeNet models on MNIST t10k', () => {
  for (const m of REAL) {
    test(m.rel, async (t) => {
      const file = path.join(ASSETS, m.rel);
      if (!existsSync(file) || !existsSync(path.join(ASSETS, 'data/mnist/t10k-images-idx3-ubyte.gz'))) {
        t.skip(`needs ../shared/assets/${m.rel} and data/mnist (absent)`);
        return;
      }
      const N = 2000;
      const B = 200;
      const { x, labels } = loadMnist(N);
      const before = tf.memory().numTensors;
      const runner = await openTfjsModel(file);
      try {
        assert.equal(runner.format, m.format);
        assert.deepEqual(runner.inputShape, [null, ...m.itemShape]);
        const ls = runner.layers();
        assert.deepEqual(ls.filter((l) => l.defaultSelected).map((l) => l.id), [...m.selected]);
        assert.deepEqual(ls.filter((l) => l.isOutput).map((l) => l.id), [m.output]);

        const afterOpen = tf.memory().numTensors;
        let correct = 0;
        const t0 = performance.now();
        for (let s = 0; s < N; s += B) {
          const out = (await runner.run({ data: x.subarray(s * 784, (s + B) * 784), shape: [B, ...m.itemShape] }, [m.output])).get(m.output)!;
          const c = out.shape[1]!;
          for (let i = 0; i < B; i++) {
            let best = 0;
            for (let j = 1; j < c; j++) if (out.data[i * c + j]! > out.data[i * c + best]!) best = j;
            if (best === labels[s + i]) correct++;
          }
        }
        const secs = (performance.now() - t0) / 1000;
        const acc = correct / N;
        t.diagnostic(`${m.rel}: accuracy ${(acc * 100).toFixed(2)}% on t10k[0:${N}], ${(N / secs).toFixed(0)} images/s (${runner.backend})`);
        assert.ok(acc >= m.minAcc, `accuracy ${acc}`);
        assert.equal(tf.memory().numTensors, afterOpen, 'no tensors leak across batches');

        const all = await runner.run({ data: x.subarray(0, 4 * 784), shape: [4, 784] }, ls.map((l) => l.id));
        for (const l of ls) {
          const got = all.get(l.id)!;
          assert.deepEqual(got.shape, [4, ...l.shape.slice(1)], l.id);
          assert.equal(got.data.length, got.shape.reduce((a, b) => a * b, 1));
          assert.ok(got.data.every(Number.isFinite), `${l.id} finite`);
        }
        assert.equal(tf.memory().numTensors, afterOpen);
      } finally {
        await runner.dispose();
      }
      assert.equal(tf.memory().numTensors, before);
    });
  }
});

test('a NaN or Inf float32 weight is refused at load, naming the weight (wasm would hide a NaN bias behind ReLU)', async () => {
  const src = path.resolve('models/fmnist-mlp');
  const json = JSON.parse(readFileSync(path.join(src, 'model.json'), 'utf8')) as { weightsManifest: { weights: { name: string; shape: number[] }[] }[] };
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const bytes = readFileSync(path.join(src, 'weights.bin'));
  for (const [bad, k] of [[NaN, 1], [Infinity, 2]] as const) {
    // Corrupt one value of the k-th weight tensor.
    let offset = 0;
    for (let i = 0; i < k; i++) offset += specs[i]!.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    w[offset + 3] = bad;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lp-nan-'));
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    await fs.writeFile(path.join(dir, 'weights.bin'), Buffer.from(w.buffer));
    await assert.rejects(openTfjsModel(dir), (e: unknown) => e instanceof RuntimeFailure && e.message.includes(`\`${specs[k]!.name}\``) && e.message.includes(`${bad} (value 3 of`));
  }
  // The clean model opens.
  await (await openTfjsModel(src)).dispose();
});

// ─── hardening (issue 20): a model.json is not trusted ───

describe('tfjs hardening: broken layer graphs, confined weight paths, bounded calls', () => {
  const LENETS = { keras: 'models/lenet-keras-layers', tensorspace: 'models/lenet-tensorspace-layers' };
  type Json = Record<string, unknown>;
  /** A writable copy of a shared LeNet (model.json renamed as it was) and its parsed topology. */
  async function copyLenet(which: keyof typeof LENETS): Promise<{ dir: string; file: string; json: Json; layers: Json[]; config: Json }> {
    const src = path.join(ASSETS, LENETS[which]);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `lp-topo-${which}-`));
    for (const f of await fs.readdir(src)) await fs.writeFile(path.join(dir, f), await fs.readFile(path.join(src, f)));
    const file = path.join(dir, which === 'keras' ? 'model.json' : 'mnist.json');
    const json = JSON.parse(await fs.readFile(file, 'utf8')) as Json;
    const topo = json.modelTopology as Json;
    const model = (topo.model_config ?? topo) as Json;
    const config = model.config as Json;
    return { dir, file, json, layers: config.layers as Json[], config };
  }
  const save = (file: string, json: Json) => fs.writeFile(file, JSON.stringify(json));
  // The shared LeNets live beside the checkout (../shared/assets); without them these tests say so and skip.
  const NEEDS_LENET = Object.values(LENETS).every((m) => existsSync(path.join(ASSETS, m))) ? {} : { skip: 'needs ../shared/assets/models/lenet-* (absent)' };

  for (const which of Object.keys(LENETS) as (keyof typeof LENETS)[]) {
    test(`${which} LeNet with one layer deleted: \`layers\` exits 1 at once naming the dangling reference (it used to spin forever)`, NEEDS_LENET, async () => {
      const m = await copyLenet(which);
      const removed = m.layers.splice(3, 1)[0]!;
      await save(m.file, m.json);
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['bin/layerprobe.js', 'layers', m.file], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, CI: '1' } });
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(r.signal, null, `killed after ${seconds.toFixed(0)} s: the load spun`);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`broken layer graph: .*refers to layer \`${removed.name as string}\`, which is not in the model`));
      assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('layerprobe: error:')).length, 1);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('topology checks: valid shared models pass; missing node, cycle, duplicate name and Keras 3 dangling history are refused', NEEDS_LENET, async () => {
    for (const which of Object.keys(LENETS) as (keyof typeof LENETS)[]) {
      const m = await copyLenet(which);
      checkLayersTopology(m.file, m.json.modelTopology);
    }
    checkLayersTopology('graph', JSON.parse(readFileSync(path.join(ASSETS, 'models/lenet-tf-graph/model.json'), 'utf8')).modelTopology);
    const refused = async (edit: (m: Awaited<ReturnType<typeof copyLenet>>) => void, pattern: RegExp) => {
      const m = await copyLenet('keras');
      edit(m);
      assert.throws(() => checkLayersTopology(m.file, m.json.modelTopology), (e: unknown) => e instanceof RuntimeFailure && pattern.test(e.message));
    };
    await refused((m) => ((m.layers[2]!.inbound_nodes as unknown[][][])[0]![0]![1] = 1), /refers to node 1 of layer `reshape_1`, which has 1/);
    await refused((m) => (m.layers[1]!.inbound_nodes = [[['Conv2D_1', 0, 0, {}]]]), /cycle through layer/);
    await refused((m) => (m.layers[2]!.name = 'reshape_1'), /two layers named `reshape_1`/);
    await refused((m) => (m.config.output_layers = [['gone', 0, 0]]), /output_layers\[0\] refers to layer `gone`/);
    await refused((m) => (m.layers[2]!.inbound_nodes = 'reshape_1'), /inbound_nodes that are not a list/);
    // Found by the fuzzer: each of these made TF.js wait forever.
    await refused((m) => delete m.layers[2]!.name, /layer 2 has no name/);
    await refused((m) => ((m.layers[2]!.config as Json).name = 'other'), /layer `Conv2D_1` is called `other` in its config/);
    await refused((m) => (m.layers[1]!.inbound_nodes = [[]]), /layer `reshape_1` inbound node 0 has no inputs/);
    // Node 0 of Conv2D_1 needs Dense_1 applied twice, and Dense_1's first application needs Conv2D_1.
    await refused((m) => {
      (m.layers[2]!.inbound_nodes as unknown[]) = [[['Dense_1', 1, 0, {}]]];
      m.layers.find((l) => l.name === 'Dense_1')!.inbound_nodes = [[['flatten_1', 0, 0, {}]], [['reshape_1', 0, 0, {}]]];
      m.layers.find((l) => l.name === 'flatten_1')!.inbound_nodes = [[['Conv2D_1', 0, 0, {}]]];
    }, /cycle through layer/);
    // Keras 3 serialisation: inputs are keras tensors carrying a keras_history.
    const history = (name: string) => [{ args: [{ class_name: '__keras_tensor__', config: { shape: [null, 28, 28, 1], keras_history: [name, 0, 0] } }], kwargs: {} }];
    await refused((m) => (m.layers[2]!.inbound_nodes = history('nowhere')), /refers to layer `nowhere`/);
    const ok = await copyLenet('keras');
    ok.layers[2]!.inbound_nodes = history('reshape_1');
    checkLayersTopology(ok.file, ok.json.modelTopology);
    // A nested model is checked too.
    const nested = { class_name: 'Model', config: { name: 'inner', layers: [{ name: 'a', class_name: 'Dense', config: {}, inbound_nodes: [[['b', 0, 0, {}]]] }] } };
    assert.throws(() => checkLayersTopology('n', { class_name: 'Sequential', config: { layers: [nested] } }), /refers to layer `b`/);
  });

  test('weight paths leaving the model folder are refused, naming the path (absolute, .., encoded .., symlink out)', NEEDS_LENET, async () => {
    const m = await copyLenet('keras');
    const manifest = m.json.weightsManifest as { paths: string[] }[];
    const outside = path.join(path.dirname(m.dir), `lp-secret-${process.pid}`);
    await fs.writeFile(outside, Buffer.alloc(177704));
    await fs.symlink(outside, path.join(m.dir, 'link.bin'));
    const rel = path.relative(m.dir, outside);
    for (const [p, why] of [[outside, /is absolute/], [rel, /climbs out with `\.\.`/], [rel.replace(/\.\./g, '%2e%2e'), /climbs out/], ['sub/../../x', /climbs out/], ['link.bin', /is a link to .*outside the model's folder/]] as const) {
      manifest[0]!.paths = [p];
      await save(m.file, m.json);
      await assert.rejects(loadArtifacts(m.file), (e: unknown) => e instanceof RuntimeFailure && e.message.includes(`\`${p}\``) && why.test(e.message), p);
    }
    // A link that stays inside the folder is fine.
    await fs.symlink('group1-shard1of1', path.join(m.dir, 'inside.bin'));
    manifest[0]!.paths = ['inside.bin'];
    await save(m.file, m.json);
    await loadArtifacts(m.file);
    await fs.rm(outside);
  });

  test('a third-party call that spins is stopped by the watchdog (exit 1, one line) and Ctrl-C still ends it', async () => {
    const script = `import { bounded } from ${JSON.stringify(path.resolve('src/util/watchdog.ts'))};\nprocess.on('SIGINT', () => process.exit(99));\nbounded('spinning on purpose', () => { for (;;) {} });\n`;
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'lp-spin-')), 'spin.ts');
    await fs.writeFile(file, script);
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, LAYERPROBE_CALL_TIMEOUT_S: '1' } });
    assert.equal(r.signal, null);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'layerprobe: error: spinning on purpose did not finish within 1 s; stopped (a malformed model can make it loop forever)\n');
    // Ctrl-C during the call: the listener (which a busy thread cannot run) is off, the default action ends it.
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: 'ignore' });
    await new Promise((res) => setTimeout(res, 2500));
    child.kill('SIGINT');
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    assert.equal(signal, 'SIGINT', `exit code ${code}`);
  });
});
