/**
 * TF.js models on onnxruntime (runtime/tfjs-onnx/engine.ts): the shipped TF.js models and a
 * MobileNetV2-class model convert and agree with TF.js run on its own (logits to 1e-4 relative,
 * the default hidden layers to 1e-3) on real Fashion-MNIST batches, with the TF.js layer ids and
 * NHWC layouts, and so does a public TF.js graph model (a converted TensorFlow LeNet, every node); a model with a layer the converter lacks, and a cached conversion that disagrees
 * with its model, fall back to TF.js with the reason in warnings() and the backend string, while
 * `--engine onnx` refuses them. The conversion cache lives in a temporary $XDG_CACHE_HOME.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type * as tfTypes from '../src/runtime/tf-types.js';
import { openDataset } from '../src/data/open.js';
import { preprocess } from '../src/data/preprocess.js';
import { selectIndices } from '../src/data/sampling.js';
import { RuntimeFailure } from '../src/errors.js';
import { loadTf, type Tf } from '../src/runtime/backend.js';
import { openModel } from '../src/runtime/open.js';
import { saveToDir } from '../src/runtime/tfjs-io.js';
import { openTfjsModel } from '../src/runtime/tfjs.js';
import { conversionCacheDir, ConvertedTfjsRunner, relativeDifference, CHECK_REL_OUTPUT } from '../src/runtime/tfjs-onnx/engine.js';
import type { ModelRunner } from '../src/runtime/types.js';
import { hasShared, ROOT, sharedPath, tempDir } from './helpers/fixtures.js';
import { writeMobileNetV2 } from './helpers/mobilenet.js';

let tf: Tf;
let tmp: string;
let images: { data: Float32Array; shape: number[] };
const savedCache = process.env.XDG_CACHE_HOME;

before(async () => {
  tf = (await loadTf()).tf;
  tmp = await tempDir('lp-engine-');
  process.env.XDG_CACHE_HOME = path.join(tmp, 'cache');
  const ds = await openDataset('fashion-mnist');
  const batch = await ds.read(selectIndices(ds.labels, ds.classes.length, { limit: 64, seed: 0 }));
  images = preprocess(batch, { scale: 255, layout: 'NHWC' });
});

after(async () => {
  if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCache;
  await rm(tmp, { recursive: true, force: true });
});

/** Both engines on the same batch: every layer asked for, compared in the TF.js layout. */
async function agreement(file: string, input: { data: Float32Array; shape: number[] }, ids?: string[]): Promise<{ converted: ModelRunner; worstOutput: number; worstHidden: number }> {
  const converted = await openModel(file, { engine: 'auto' });
  const plain = await openModel(file, { engine: 'tfjs' });
  try {
    const layers = converted.layers();
    assert.deepEqual(layers, plain.layers(), 'the converted runner lists the TF.js layers');
    const output = layers.find((l) => l.isOutput)!.id;
    const want = ids ?? [...layers.filter((l) => l.defaultSelected).map((l) => l.id), output];
    const [a, b] = [await plain.run(input, want), await converted.run(input, want)];
    let worstOutput = 0;
    let worstHidden = 0;
    for (const id of want) {
      assert.deepEqual(b.get(id)!.shape, a.get(id)!.shape, `${id}: shape as TF.js gives it`);
      const rel = relativeDifference(a.get(id)!.data, b.get(id)!.data);
      if (id === output) worstOutput = Math.max(worstOutput, rel);
      else worstHidden = Math.max(worstHidden, rel);
    }
    return { converted, worstOutput, worstHidden };
  } finally {
    await plain.dispose();
  }
}

describe('shipped TF.js models run on onnxruntime after the first-batch check', () => {
  for (const name of ['fmnist-mlp', 'fmnist-cnn', 'fmnist-vit']) {
    test(name, async () => {
      const { converted, worstOutput, worstHidden } = await agreement(path.join(ROOT, 'models', name, 'model.json'), images);
      try {
        assert.ok(converted instanceof ConvertedTfjsRunner);
        assert.equal(converted.engine, 'onnx', converted.backend);
        assert.match(converted.backend, /^onnxruntime-node .* \(converted from TF\.js; checked against tfjs \w+ on the first batch: output within [\d.e+-]+ relative\)$/);
        assert.deepEqual(converted.warnings?.() ?? [], []);
        assert.ok(worstOutput <= 1e-4, `logits differ by ${worstOutput} relative`);
        assert.ok(worstHidden <= 1e-3, `hidden layers differ by ${worstHidden} relative`);
      } finally {
        await converted.dispose();
      }
    });
  }
});

test('a MobileNetV2-class model (batch norm, depthwise convs, ReLU6, residual adds) converts and agrees on every layer', async () => {
  const dir = path.join(tmp, 'mnv2');
  await mkdir(dir);
  const file = await writeMobileNetV2(tf, dir, { size: 32, alpha: 0.35, stages: 4, classes: 10 });
  const input = { data: Float32Array.from({ length: 8 * 32 * 32 * 3 }, (_, i) => images.data[i % images.data.length]!), shape: [8, 32, 32, 3] };
  const probe = await openModel(file, { engine: 'tfjs' });
  const all = probe.layers().map((l) => l.id);
  await probe.dispose();
  const { converted, worstOutput, worstHidden } = await agreement(file, input, all);
  try {
    assert.equal(converted.warnings?.().length ?? 0, 0);
    assert.ok(worstOutput <= CHECK_REL_OUTPUT, `softmax differs by ${worstOutput} relative`);
    assert.ok(worstHidden <= 1e-3, `a hidden layer differs by ${worstHidden} relative`);
  } finally {
    await converted.dispose();
  }
});

test('a TF.js graph model (converted TensorFlow LeNet) converts and agrees on every node', { skip: !hasShared('models/lenet-tf-graph/model.json') && 'needs ../shared/assets' }, async () => {
  const file = sharedPath('models/lenet-tf-graph/model.json');
  const probe = await openModel(file, { engine: 'tfjs' });
  const all = probe.layers().map((l) => l.id);
  await probe.dispose();
  const { converted, worstOutput, worstHidden } = await agreement(file, images, all);
  try {
    assert.equal(converted.format, 'tfjs-graph');
    assert.match(converted.backend, /^onnxruntime-node .*checked against/);
    assert.ok(all.length >= 15, `${all.length} nodes`);
    assert.ok(worstOutput <= CHECK_REL_OUTPUT, `softmax differs by ${worstOutput} relative`);
    assert.ok(worstHidden <= 1e-4, `a node differs by ${worstHidden} relative`);
  } finally {
    await converted.dispose();
  }
});

/**
 * A TF.js graph model written by hand in the format tensorflowjs_converter emits for Keras/TF
 * models, using the fused ops its grappler pass produces: _FusedConv2D (BiasAdd + Relu6, SAME,
 * stride 2), MaxPool, FusedDepthwiseConv2dNative (BiasAdd + Relu), a residual AddV2, Mean over
 * H,W, _FusedMatMul (BiasAdd) and Softmax. Attributes as base64 proto3 JSON; seeded weights.
 */
async function writeFusedGraphModel(dir: string): Promise<string> {
  const b64 = (t: string): string => Buffer.from(t).toString('base64');
  const ints = (xs: number[]): Record<string, unknown> => ({ list: { i: xs.map(String) } });
  const rng = (() => {
    let x = 12345;
    return (): number => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  })();
  const weights: { name: string; shape: number[]; dtype: 'float32' | 'int32'; data: Float32Array | Int32Array }[] = [];
  const nodes: Record<string, unknown>[] = [{ name: 'x', op: 'Placeholder', input: [], attr: { dtype: { type: 1 }, shape: { shape: { dim: [{ size: '-1' }, { size: '9' }, { size: '9' }, { size: '3' }] } } } }];
  const constant = (name: string, shape: number[], dtype: 'float32' | 'int32' = 'float32', values?: number[]): void => {
    const n = shape.reduce((a, c) => a * c, 1);
    const data = dtype === 'int32' ? Int32Array.from(values!) : Float32Array.from({ length: n }, () => 0.5 * rng());
    weights.push({ name, shape, dtype, data });
    nodes.push({ name, op: 'Const', input: [], attr: { dtype: { type: dtype === 'int32' ? 3 : 1 }, value: { tensor: { dtype: dtype === 'int32' ? 3 : 1, tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } } } });
  };
  const fusedAttrs = (ops: string[], extra: Record<string, unknown>): Record<string, unknown> => ({ T: { type: 1 }, fused_ops: { list: { s: ops.map(b64) } }, num_args: { i: '1' }, epsilon: { f: 0 }, ...extra });
  constant('w1', [3, 3, 3, 8]);
  constant('b1', [8]);
  nodes.push({ name: 'conv1', op: '_FusedConv2D', input: ['x', 'w1', 'b1'], attr: fusedAttrs(['BiasAdd', 'Relu6'], { strides: ints([1, 2, 2, 1]), dilations: ints([1, 1, 1, 1]), padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') } }) });
  nodes.push({ name: 'pool', op: 'MaxPool', input: ['conv1'], attr: { T: { type: 1 }, ksize: ints([1, 2, 2, 1]), strides: ints([1, 1, 1, 1]), padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') } } });
  constant('dw', [3, 3, 8, 1]);
  constant('db', [8]);
  nodes.push({ name: 'dwconv', op: 'FusedDepthwiseConv2dNative', input: ['pool', 'dw', 'db'], attr: fusedAttrs(['BiasAdd', 'Relu'], { strides: ints([1, 1, 1, 1]), dilations: ints([1, 1, 1, 1]), padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') } }) });
  nodes.push({ name: 'residual', op: 'AddV2', input: ['pool', 'dwconv'], attr: { T: { type: 1 } } });
  constant('axes', [2], 'int32', [1, 2]);
  nodes.push({ name: 'gap', op: 'Mean', input: ['residual', 'axes'], attr: { T: { type: 1 }, Tidx: { type: 3 }, keep_dims: { b: false } } });
  constant('wf', [8, 5]);
  constant('bf', [5]);
  nodes.push({ name: 'logits', op: '_FusedMatMul', input: ['gap', 'wf', 'bf'], attr: fusedAttrs(['BiasAdd'], { transpose_a: { b: false }, transpose_b: { b: false } }) });
  nodes.push({ name: 'probs', op: 'Softmax', input: ['logits'], attr: { T: { type: 1 } } });
  await mkdir(dir, { recursive: true });
  const bin = Buffer.concat(weights.map((w) => Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength)));
  await writeFile(path.join(dir, 'weights.bin'), bin);
  const json = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
    weightsManifest: [{ paths: ['weights.bin'], weights: weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })) }],
  };
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  return path.join(dir, 'model.json');
}

test('a TF.js graph model with the converter\'s fused ops (conv+bias+relu6, depthwise+bias+relu, matmul+bias) agrees on every node', async () => {
  const file = await writeFusedGraphModel(path.join(tmp, 'fused-graph'));
  const probe = await openModel(file, { engine: 'tfjs' });
  const all = probe.layers().map((l) => l.id);
  await probe.dispose();
  assert.deepEqual(all, ['conv1', 'pool', 'dwconv', 'residual', 'gap', 'logits', 'probs']);
  const input = { data: Float32Array.from({ length: 6 * 9 * 9 * 3 }, (_, i) => images.data[i]! * 4 - 1), shape: [6, 9, 9, 3] };
  const { converted, worstOutput, worstHidden } = await agreement(file, input, all);
  try {
    assert.match(converted.backend, /^onnxruntime-node /);
    assert.ok(worstOutput <= CHECK_REL_OUTPUT, `softmax differs by ${worstOutput} relative`);
    assert.ok(worstHidden <= 1e-5, `a node differs by ${worstHidden} relative`);
  } finally {
    await converted.dispose();
  }
});

function upsamplingModel(seed: number): tfTypes.LayersModel {
  const input = tf.input({ shape: [28, 28, 1], name: 'image' });
  const c = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv', kernelInitializer: tf.initializers.glorotNormal({ seed }) }).apply(input) as tfTypes.SymbolicTensor;
  const u = tf.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(c) as tfTypes.SymbolicTensor;
  const f = tf.layers.flatten({ name: 'flat' }).apply(u) as tfTypes.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, name: 'logits', kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }) }).apply(f) as tfTypes.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function convModel(seed: number): tfTypes.LayersModel {
  const input = tf.input({ shape: [28, 28, 1], name: 'image' });
  const c = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv', kernelInitializer: tf.initializers.glorotNormal({ seed }) }).apply(input) as tfTypes.SymbolicTensor;
  const f = tf.layers.flatten({ name: 'flat' }).apply(c) as tfTypes.SymbolicTensor;
  const out = tf.layers.dense({ units: 10, name: 'logits', kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }) }).apply(f) as tfTypes.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

async function save(model: tfTypes.LayersModel, name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  await model.save(saveToDir(dir));
  model.dispose();
  return path.join(dir, 'model.json');
}

test('a layer the converter lacks: auto falls back to TF.js and says why; onnx refuses', async () => {
  const file = await save(upsamplingModel(3), 'upsampling');
  const runner = await openModel(file);
  const plain = await openModel(file, { engine: 'tfjs' });
  try {
    assert.match(runner.backend, /^tfjs \w+ \(ONNX conversion not used: cannot convert layer `up` to ONNX: layer class UpSampling2D is not supported\)$/);
    assert.deepEqual(runner.warnings?.(), ['runs on TF.js, not onnxruntime: cannot convert layer `up` to ONNX: layer class UpSampling2D is not supported']);
    const [a, b] = [await runner.run(images, ['logits']), await plain.run(images, ['logits'])];
    assert.deepEqual(a.get('logits')!.data, b.get('logits')!.data, 'the fallback is TF.js itself');
  } finally {
    await runner.dispose();
    await plain.dispose();
  }
  await assert.rejects(openModel(file, { engine: 'onnx' }), (e: unknown) => e instanceof RuntimeFailure && /^--engine onnx: model .* cannot run on onnxruntime: cannot convert layer `up`/.test(e.message) && /--engine tfjs/.test(e.hint ?? ''));
});

test('a cached conversion that disagrees with its model fails the first-batch check and falls back', async () => {
  // Model B's conversion put where model A's belongs: same layers, other weights.
  const fileA = await save(convModel(10), 'conv-a');
  const fileB = await save(convModel(20), 'conv-b');
  const sha = async (file: string): Promise<string> => {
    const r = await openTfjsModel(file);
    await r.dispose();
    return r.contentSha256;
  };
  await (await openModel(fileB)).dispose();
  const cache = conversionCacheDir();
  const [shaA, shaB] = [await sha(fileA), await sha(fileB)];
  assert.notEqual(shaA, shaB);
  assert.ok((await readdir(cache)).includes(`${shaB}.onnx`), 'opening B cached its conversion under its content hash');
  await copyFile(path.join(cache, `${shaB}.onnx`), path.join(cache, `${shaA}.onnx`));

  const a = await openModel(fileA);
  const plain = await openModel(fileA, { engine: 'tfjs' });
  try {
    assert.ok(a instanceof ConvertedTfjsRunner);
    assert.equal(a.engine, 'unchecked');
    const got = await a.run(images, ['conv']);
    assert.equal(a.engine, 'tfjs');
    assert.match(a.warnings()[0] ?? '', /^runs on TF\.js, not onnxruntime: the converted model disagrees with TF\.js at layer `(conv|logits)` \(max relative difference [\d.e+-]+ > 0\.00\d+\)$/);
    assert.match(a.backend, /^tfjs \w+ \(ONNX conversion not used: the converted model disagrees/);
    assert.deepEqual(got.get('conv')!.data, (await plain.run(images, ['conv'])).get('conv')!.data);
  } finally {
    await a.dispose();
    await plain.dispose();
  }
  const strict = await openModel(fileA, { engine: 'onnx' });
  try {
    await assert.rejects(strict.run(images, ['conv']), (e: unknown) => e instanceof RuntimeFailure && /^--engine onnx: the converted model disagrees with TF\.js/.test(e.message));
  } finally {
    await strict.dispose();
  }
});
