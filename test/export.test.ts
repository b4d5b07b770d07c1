/**
 * TF.js → ONNX export: on 1,000 Fashion-MNIST test images every layer of the exported model
 * (same ids) matches the TF.js model to 1e-4, for the three reference architectures and for two
 * models that use every other supported layer; the ONNX runner's default layers are the TF.js
 * runner's; unsupported layers and occupied destinations are refused.
 */
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fsSync, { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import type * as tfTypes from '../src/runtime/tf-types.js';
import { openDataset } from '../src/data/open.js';
import { preprocess } from '../src/data/preprocess.js';
import { selectIndices } from '../src/data/sampling.js';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import { compareFormats, DEFAULT_LAYERS_KEY, exportOnnx } from '../src/export/onnx-export.js';
import { loadTf, type Tf } from '../src/runtime/backend.js';
import { openOnnxModel } from '../src/runtime/onnx.js';
import { saveToDir } from '../src/runtime/tfjs-io.js';
import { openTfjsModel } from '../src/runtime/tfjs.js';
import { ARCH_DEFAULTS, buildModel, type Arch } from '../src/train/arch.js';

type SymbolicTensor = tfTypes.SymbolicTensor;

let tf: Tf;
let tmp: string;
let images: { data: Float32Array; shape: number[] };

before(async () => {
  tf = (await loadTf()).tf;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'lp-export-'));
  const ds = await openDataset('fashion-mnist');
  const batch = await ds.read(selectIndices(ds.labels, ds.classes.length, { limit: 1000, seed: 0 }));
  images = preprocess(batch, { scale: 255, layout: 'NHWC' });
});

after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function save(model: tfTypes.LayersModel, name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await model.save(saveToDir(dir));
  model.dispose();
  return path.join(dir, 'model.json');
}

/** Exports, then checks every layer on the 1,000 images; returns the ONNX path. */
async function exportAndCompare(modelJson: string): Promise<string> {
  const out = modelJson.replace(/model\.json$/, 'model.onnx');
  const r = await exportOnnx({ model: modelJson, out });
  assert.ok(r.maxAbsDiff !== undefined && r.maxAbsDiff < 1e-4, `export check: ${r.maxAbsDiff}`);
  const cmp = await compareFormats(modelJson, out, images);
  const tfr = await openTfjsModel(modelJson);
  const all = tfr.layers().map((l) => l.id);
  await tfr.dispose();
  assert.deepEqual(cmp.layers, all, 'every TF.js layer id exists in the ONNX graph');
  assert.ok(cmp.maxAbsDiff <= 1e-4, `max |ONNX − TF.js| ${cmp.maxAbsDiff} at \`${cmp.worst}\``);
  return out;
}

function defaults(layers: { id: string; defaultSelected: boolean }[]): string[] {
  return layers.filter((l) => l.defaultSelected).map((l) => l.id);
}

describe('reference architectures (seeded, untrained)', () => {
  for (const arch of ['mlp', 'cnn', 'vit'] as Arch[]) {
    test(`${arch}: every layer matches on 1,000 images; default layers agree`, async () => {
      const json = await save(buildModel(tf, arch, ARCH_DEFAULTS[arch], [28, 28, 1], 10, 7), arch);
      const onnxPath = await exportAndCompare(json);
      const ort = await openOnnxModel(onnxPath);
      const tfr = await openTfjsModel(json);
      try {
        assert.deepEqual(ort.inputShape, [null, 28, 28, 1], 'the NHWC input is kept');
        const tfDefault = defaults(tfr.layers());
        const meta = onnxProto.onnx.ModelProto.decode(await fs.readFile(onnxPath)).metadataProps.find((p) => p.key === DEFAULT_LAYERS_KEY);
        assert.deepEqual(JSON.parse(meta?.value ?? 'null'), tfDefault);
        // The block outputs and the head's input (cls) for the ViT; ONNX finds the same from its graph.
        if (arch === 'vit') assert.deepEqual(tfDefault, ['block_1', 'block_2', 'block_3', 'block_4', 'cls']);
        assert.deepEqual(defaults(ort.layers()), tfDefault);
        const conv = ort.layers().find((l) => l.id === 'conv_1');
        if (conv) assert.deepEqual([conv.layout, conv.shape], ['NCHW', [null, 32, 26, 26]]);
      } finally {
        await ort.dispose();
        await tfr.dispose();
      }
    });
  }
});

describe('other supported layers', () => {
  test('conv zoo: padding, strides, dilation, pools, activations, Add, Concatenate, LayerNormalization', async () => {
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const x = tf.input({ shape: [28, 28, 1], name: 'pixels' });
    const ap = (l: tfTypes.layers.Layer, t: SymbolicTensor | SymbolicTensor[]): SymbolicTensor => l.apply(t) as SymbolicTensor;
    let h = ap(tf.layers.zeroPadding2d({ padding: [[1, 1], [2, 0]], name: 'pad' }), x);
    h = ap(tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh', kernelInitializer: init(1), name: 'c_same' }), h);
    h = ap(tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: 'avg' }), h);
    const a = ap(tf.layers.conv2d({ filters: 6, kernelSize: 3, dilationRate: 2, activation: 'elu', kernelInitializer: init(2), name: 'c_dil' }), h);
    const b = ap(tf.layers.conv2d({ filters: 6, kernelSize: 5, useBias: false, kernelInitializer: init(3), name: 'c_nobias' }), h);
    const s = ap(tf.layers.add({ name: 'sum' }), [a, ap(tf.layers.activation({ activation: 'sigmoid', name: 'sig' }), b)]);
    let c = ap(tf.layers.concatenate({ name: 'cat' }), [s, ap(tf.layers.reLU({ maxValue: 0.5, name: 'relu_cap' }), a)]);
    c = ap(tf.layers.maxPooling2d({ poolSize: 2, padding: 'same', name: 'maxp' }), c);
    c = ap(tf.layers.layerNormalization({ name: 'ln4d' }), c);
    c = ap(tf.layers.leakyReLU({ alpha: 0.2, name: 'leaky' }), c);
    c = ap(tf.layers.dropout({ rate: 0.5, name: 'drop' }), c);
    const g = ap(tf.layers.globalAveragePooling2d({ name: 'gap' }), c);
    const m = ap(tf.layers.globalMaxPooling2d({ name: 'gmp' }), c);
    let d = ap(tf.layers.concatenate({ axis: 1, name: 'cat2' }), [g, m, ap(tf.layers.flatten({ name: 'flat' }), c)]);
    d = ap(tf.layers.dense({ units: 12, activation: 'gelu', kernelInitializer: init(4), name: 'd_gelu' }), d);
    d = ap(tf.layers.dense({ units: 12, activation: 'relu6', kernelInitializer: init(5), name: 'd_relu6' }), d);
    const out = ap(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(6), name: 'probs' }), d);
    const json = await save(tf.model({ inputs: x, outputs: out }), 'zoo-conv');
    await exportAndCompare(json);
  });

  test('token zoo: Reshape, Permute, rank-3 Dense, LayerNormalization, Softmax layer, more activations', async () => {
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const model = tf.sequential({
      layers: [
        tf.layers.reshape({ inputShape: [28, 28, 1], targetShape: [28, 28], name: 'rows' }),
        tf.layers.permute({ dims: [2, 1], name: 'cols' }),
        tf.layers.dense({ units: 16, activation: 'tanh', kernelInitializer: init(1), name: 'tok' }),
        tf.layers.layerNormalization({ epsilon: 1e-5, name: 'ln' }),
        tf.layers.softmax({ axis: -1, name: 'soft' }),
        tf.layers.reshape({ targetShape: [28, 4, 4], name: 'grid' }),
        tf.layers.elu({ name: 'elu' }),
        tf.layers.flatten({ name: 'flat' }),
        tf.layers.dense({ units: 32, activation: 'selu', kernelInitializer: init(2), name: 'd_selu' }),
        tf.layers.dense({ units: 32, activation: 'swish', kernelInitializer: init(3), name: 'd_swish' }),
        tf.layers.dense({ units: 32, activation: 'softplus', kernelInitializer: init(4), name: 'd_softplus' }),
        tf.layers.dense({ units: 32, activation: 'hardSigmoid', kernelInitializer: init(5), name: 'd_hsig' }),
        tf.layers.dense({ units: 10, activation: 'softsign', kernelInitializer: init(6), name: 'out' }),
      ],
    });
    await exportAndCompare(await save(model, 'zoo-tokens'));
  });
});

describe('refusals', () => {
  test('an unsupported layer names its class (RuntimeFailure, exit 1)', async () => {
    const model = tf.sequential({
      layers: [tf.layers.upSampling2d({ inputShape: [28, 28, 1], size: [2, 2], name: 'up' }), tf.layers.flatten(), tf.layers.dense({ units: 10 })],
    });
    const json = await save(model, 'up');
    await assert.rejects(exportOnnx({ model: json, out: path.join(tmp, 'up.onnx') }), (e: unknown) => {
      assert.ok(e instanceof RuntimeFailure);
      assert.equal(e.exitCode, 1);
      assert.match(e.message, /layer `up` .*UpSampling2D is not supported/);
      return true;
    });
    await assert.rejects(fs.stat(path.join(tmp, 'up.onnx')));
  });

  test('an existing file is kept unless forced', async () => {
    const json = await save(buildModel(tf, 'mlp', { ...ARCH_DEFAULTS.mlp, width: 8, depth: 1 }, [28, 28, 1], 10, 1), 'small');
    const out = path.join(tmp, 'small.onnx');
    await fs.writeFile(out, 'keep me');
    await assert.rejects(exportOnnx({ model: json, out }), (e: unknown) => e instanceof UsageError && /already exists/.test(e.message));
    assert.equal(await fs.readFile(out, 'utf8'), 'keep me');
    const r = await exportOnnx({ model: json, out, force: true, check: false });
    assert.equal(r.maxAbsDiff, undefined);
    assert.ok((await fs.stat(out)).size > 1000);
    // An ONNX model as input is a usage error, not a JSON parse failure of its bytes.
    await assert.rejects(exportOnnx({ model: out, out: path.join(tmp, 'again.onnx') }), (e: unknown) => e instanceof UsageError && /already ONNX/.test(e.message));
  });
});

test('an interrupted export leaves no partial file behind', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lp-export-int-'));
  const out = path.join(dir, 'vit.onnx');
  const bin = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'bin', 'layerprobe.js');
  const child = spawn(process.execPath, [bin, 'export', path.join(path.dirname(bin), '..', 'models', 'fmnist-vit', 'model.json'), '-o', out], { env: { ...process.env, CI: '1' } });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt the moment the partial file appears (the exporter is then checking it against
  // TF.js, a window of only a few tens of milliseconds): a directory watch, not polling.
  let seen = false;
  const watcher = fsSync.watch(dir);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    watcher.on('change', (_e, f) => {
      if (String(f).includes('.partial-')) {
        seen = true;
        clearTimeout(timer);
        resolve();
      }
    });
  });
  watcher.close();
  child.kill('SIGINT');
  const code = await exited;
  const left = await fs.readdir(dir);
  assert.ok(seen || left.includes('vit.onnx'), `the partial file never appeared: ${stderr}`);
  if (seen) {
    assert.equal(code, 130, stderr);
    assert.deepEqual(left.filter((f) => f.includes('.partial-')), [], `left behind: ${left.join(', ')}`);
    // A signal that lands after the final rename finds a complete file; never a truncated one.
    if (left.includes('vit.onnx')) await (await openOnnxModel(out)).dispose();
    else assert.deepEqual(left, [], `left behind: ${left.join(', ')}`);
  }
  await fs.rm(dir, { recursive: true, force: true });
});
