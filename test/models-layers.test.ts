/**
 * Default layers on real models of each family: the shipped MLP/CNN/ViT (ONNX and TF.js agree),
 * a residual + Inception-style CNN and a ViT exported from PyTorch (test/fixtures/layers), the
 * third-party LeNets and DeepEverest CNN, and, when unpacked, the nsfwjs MobileNetV2 and
 * InceptionV3. Block outputs + head input, a depth that follows the graph, one reduction per model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { listLayers } from '../src/api/layers.js';
import { openModel } from '../src/runtime/open.js';
import { onnxClassifierHead } from '../src/runtime/classifier-head.js';
import { decodeModel } from '../src/runtime/onnx-graph.js';
import { kindAndLayout } from '../src/runtime/layer-kind.js';
import { planReductions } from '../src/features/reduce.js';
import { checkLayout } from '../src/pipeline/prepare.js';
import { UsageError } from '../src/errors.js';
import type { LayerInfo } from '../src/runtime/types.js';
import { ROOT, hasShared, sharedPath } from './helpers/fixtures.js';

const FIX = path.join(ROOT, 'test/fixtures/layers');
/** Where `npm pack nsfwjs` was unpacked and its base64 modules decoded to model.json + shards. */
const NSFW = process.env.NSFWJS_MODELS ?? '/tmp/nsfw/models';

const defaults = (ls: LayerInfo[]): string[] => ls.filter((l) => l.defaultSelected).map((l) => l.id);
const byId = (ls: LayerInfo[], id: string): LayerInfo => {
  const l = ls.find((x) => x.id === id);
  assert.ok(l, `layer ${id} listed`);
  return l;
};

for (const name of ['fmnist-mlp', 'fmnist-cnn', 'fmnist-vit']) {
  test(`${name}: ONNX and TF.js default layers agree`, async (t) => {
    const dir = path.join(ROOT, 'models', name);
    if (!existsSync(path.join(dir, 'model.onnx'))) {
      t.skip(`models/${name} is not shipped`);
      return;
    }
    const tfjs = (await listLayers(path.join(dir, 'model.json'))).layers.filter((l) => l.defaultSelected);
    const onnx = (await listLayers(path.join(dir, 'model.onnx'))).layers.filter((l) => l.defaultSelected);
    assert.deepEqual(onnx.map((l) => l.id), tfjs.map((l) => l.id));
    assert.ok(tfjs.length >= 2);
  });
}

test('shipped ViT: the four block outputs and the head input cls (the classifier reads it)', async () => {
  const onnxPath = path.join(ROOT, 'models/fmnist-vit/model.onnx');
  const ls = (await listLayers(onnxPath)).layers;
  assert.deepEqual(defaults(ls), ['block_1', 'block_2', 'block_3', 'block_4', 'cls']);
  const head = onnxClassifierHead(decodeModel(new Uint8Array(readFileSync(onnxPath))));
  assert.equal(head.inputLayer, 'cls');
  // Each block adds attention (q, k, v, out) and MLP (fc1, fc2) weights: depth grows by 4 matmul layers on the longest path.
  assert.deepEqual(['block_1', 'block_2', 'block_3', 'block_4'].map((id) => byId(ls, id).depth), [5, 9, 13, 17]);
});

test('torch residual + Inception-style CNN: block outputs, module concat, pooled head input; branches share a depth', async () => {
  const file = path.join(FIX, 'rescnn.onnx');
  const ls = (await listLayers(file)).layers;
  // Architecture (make_fixtures.py): stem → residual block → strided residual block (1×1 projection) → two-branch Concat → GAP → Flatten → fc.
  assert.deepEqual(defaults(ls), ['/stem/stem.2/Relu_output_0', '/layer1/Relu_1_output_0', '/layer2/Relu_1_output_0', '/mixed/Concat_output_0', '/Flatten_output_0']);
  // Longest path in weighted layers, counted by hand from the architecture.
  const depth = (id: string): number | undefined => byId(ls, id).depth;
  assert.equal(depth('/stem/stem.2/Relu_output_0'), 1);
  assert.equal(depth('/layer1/Relu_1_output_0'), 3);
  assert.equal(depth('/layer2/short/short.0/Conv_output_0'), 4); // the projection branch runs beside conv1 → conv2
  assert.equal(depth('/layer2/Relu_1_output_0'), 5);
  assert.equal(depth('/mixed/Relu_output_0'), 6); // branch 1×1
  assert.equal(depth('/mixed/Relu_1_output_0'), 6); // branch 1×1 → 3×3, first step: same depth as the parallel 1×1
  assert.equal(depth('/mixed/Relu_2_output_0'), 7);
  assert.equal(depth('/mixed/Concat_output_0'), 7);
  const head = onnxClassifierHead(decodeModel(new Uint8Array(readFileSync(file))));
  assert.equal(head.inputLayer, '/Flatten_output_0');
  // One reduction for all conv maps: the widest (16×28×28 = 12544) exceeds the cap, so every map is pooled.
  const chosen = ls.filter((l) => l.defaultSelected);
  const plan = planReductions(chosen, { name: 'auto' });
  assert.deepEqual(plan.reducers.map((r) => r.name), ['gap', 'gap', 'gap', 'gap', 'flatten']);
  assert.match(plan.rule, /conv maps gap \(widest has 12544 values > cap 2048\)/);
  assert.ok(plan.reducers.every((r) => r.note === undefined));
  // With a cap the maps fit under, all of them are flattened instead, never a mix.
  const wide = planReductions(chosen, { name: 'auto', k: 20000 });
  assert.deepEqual(wide.reducers.map((r) => r.name), ['flatten', 'flatten', 'flatten', 'flatten', 'flatten']);
});

test('torch ViT: each block’s residual output and the cls feature the head reads; tokens reduced by mean over tokens', async () => {
  const file = path.join(FIX, 'vit.onnx');
  const runner = await openModel(file);
  try {
    const ls = runner.layers();
    assert.deepEqual(defaults(ls), ['/blocks/blocks.0/Add_2_output_0', '/blocks/blocks.1/Add_2_output_0', '/Gather_1_output_0']);
    for (const id of defaults(ls).slice(0, 2)) {
      assert.equal(byId(ls, id).op, 'Add');
      assert.deepEqual(byId(ls, id).shape, [null, 17, 32]);
    }
    // qkv, proj, fc1, fc2 per block after the patch conv.
    assert.deepEqual(defaults(ls).map((id) => byId(ls, id).depth), [5, 9, 9]);
    // The attention half's residual add is mid-block, not a default layer.
    assert.equal(byId(ls, '/blocks/blocks.0/Add_output_0').defaultSelected, false);
    const head = onnxClassifierHead(decodeModel(new Uint8Array(readFileSync(file))));
    assert.equal(head.inputLayer, '/Gather_1_output_0');
    const chosen = ls.filter((l) => l.defaultSelected);
    const plan = planReductions(chosen, { name: 'auto' });
    assert.deepEqual(plan.reducers.map((r) => r.name), ['mean-token', 'mean-token', 'flatten']);
    assert.match(plan.rule, /tokens mean-token/);
    // mean-token against a plain float64 mean over the 17 tokens of the raw block output.
    const x = new Float32Array(3 * 784);
    for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 256) / 255;
    const raw = (await runner.run({ data: x, shape: [3, 1, 28, 28] }, [chosen[0]!.id])).get(chosen[0]!.id)!;
    const got = await plan.reducers[0]!.apply(raw);
    for (let s = 0; s < 3; s++) {
      for (let c = 0; c < 32; c++) {
        let acc = 0;
        for (let t = 0; t < 17; t++) acc += raw.data[s * 17 * 32 + t * 32 + c]!;
        assert.ok(Math.abs(got[s * 32 + c]! - acc / 17) < 1e-5);
      }
    }
  } finally {
    await runner.dispose();
  }
});

test('a ReLU after the logits: the head is still the Gemm before it, and it reproduces the output', async () => {
  const file = path.join(FIX, 'relu-logits.onnx');
  const head = onnxClassifierHead(decodeModel(new Uint8Array(readFileSync(file))));
  assert.equal(head.K, 10);
  assert.equal(head.d, 32);
  const runner = await openModel(file);
  try {
    const ls = runner.layers();
    assert.ok(head.inputLayer && byId(ls, head.inputLayer).defaultSelected, 'the head input is a default layer');
    const out = ls.find((l) => l.isOutput)!.id;
    const x = new Float32Array(4 * 784);
    for (let i = 0; i < x.length; i++) x[i] = ((i * 104729) % 256) / 255;
    const got = await runner.run({ data: x, shape: [4, 1, 28, 28] }, [head.inputLayer!, out]);
    const h = got.get(head.inputLayer!)!.data;
    const y = got.get(out)!.data;
    for (let s = 0; s < 4; s++) {
      for (let k = 0; k < 10; k++) {
        let z = head.bias?.[k] ?? 0;
        for (let c = 0; c < 32; c++) z += head.W[k * 32 + c]! * h[s * 32 + c]!;
        assert.ok(Math.abs(Math.max(0, z) - y[s * 10 + k]!) < 1e-4, `relu(W h + b) reproduces the output (${z} vs ${y[s * 10 + k]})`);
      }
    }
  } finally {
    await runner.dispose();
  }
});

test('sequential third-party models keep their post-activation defaults (one per conv block, then the dense layers)', async (t) => {
  if (!hasShared('models/mnist-cnn-deepeverest.onnx')) {
    t.skip('../shared/assets is absent');
    return;
  }
  // Conv→MaxPool→ReLU twice, FC 320-50 → ReLU, FC 50-10 → LogSoftmax (MANIFEST.md): the ReLUs.
  const ev = (await listLayers(sharedPath('models/mnist-cnn-deepeverest.onnx'))).layers;
  assert.deepEqual(defaults(ev).map((id) => byId(ev, id).op), ['Relu', 'Relu', 'Relu']);
  assert.deepEqual(defaults(ev).map((id) => byId(ev, id).depth), [1, 2, 3]);
  for (const [file, pools] of [['models/lenet-tensorspace-layers/mnist.json', 'MaxPooling2D'], ['models/lenet-tf-graph/model.json', 'MaxPool']] as const) {
    const ls = (await listLayers(sharedPath(file))).layers;
    const ops = defaults(ls).map((id) => byId(ls, id).op);
    assert.deepEqual(ops.slice(0, 2), [pools, pools], file);
    assert.equal(ops.length, 4, file); // two conv blocks, Dense 120, Dense 84
    assert.deepEqual(defaults(ls).map((id) => byId(ls, id).depth), [1, 2, 3, 4], file);
  }
});

/** Longest path in weighted layers straight from a Keras model.json topology: an independent depth. */
function kerasDepths(file: string): Map<string, number> {
  const json = JSON.parse(readFileSync(file, 'utf8')) as { modelTopology: { model_config: { config: { layers: { name: string; class_name: string; inbound_nodes: [string, number, number][][] }[] } } } };
  const weighted = new Set(['Conv2D', 'DepthwiseConv2D', 'Dense', 'SeparableConv2D']);
  const depth = new Map<string, number>();
  for (const l of json.modelTopology.model_config.config.layers) {
    const ins = (l.inbound_nodes[0] ?? []).map((e) => depth.get(e[0]) ?? 0);
    depth.set(l.name, Math.max(0, ...ins) + (weighted.has(l.class_name) ? 1 : 0));
  }
  return depth;
}

test('nsfwjs MobileNetV2: residual adds and the projections that feed them, the pooled head stack; depth from the topology', async (t) => {
  const file = path.join(NSFW, 'mobilenet_v2/model.json');
  if (!existsSync(file)) {
    t.skip(`nsfwjs MobileNetV2 not unpacked at ${file} (npm pack nsfwjs; decode dist/models/*.min.js; or set NSFWJS_MODELS)`);
    return;
  }
  const ls = (await listLayers(file)).layers;
  const chosen = ls.filter((l) => l.defaultSelected);
  assert.ok(ls.length > 150 && chosen.length <= 20, `${chosen.length} default layers of ${ls.length}`);
  const blocks = chosen.filter((l) => l.kind === 'conv' && l.op !== 'AveragePooling2D');
  // Every block output: a residual add, or the projection of a block whose output a residual add reads.
  assert.ok(blocks.every((l) => /^block_\d+_(add|project_BN)$/.test(l.id)), blocks.map((l) => l.id).join(', '));
  assert.ok(!chosen.some((l) => /expand|depthwise/.test(l.id)), 'no expand or depthwise layer');
  for (const add of ls.filter((l) => /^block_\d+_add$/.test(l.id))) assert.ok(add.defaultSelected, `${add.id} selected`);
  const want = kerasDepths(file);
  for (const l of ls) assert.equal(l.depth, want.get(l.id), l.id);
});

test('nsfwjs InceptionV3: the mixed modules, not their branches; parallel branches share a depth', async (t) => {
  const file = path.join(NSFW, 'inception_v3/model.json');
  if (!existsSync(file)) {
    t.skip(`nsfwjs InceptionV3 not unpacked at ${file} (npm pack nsfwjs; decode dist/models/*.min.js; or set NSFWJS_MODELS)`);
    return;
  }
  const ls = (await listLayers(file)).layers;
  const chosen = defaults(ls);
  for (let k = 0; k <= 10; k++) assert.ok(chosen.includes(`mixed${k}`), `mixed${k}`);
  assert.ok(!chosen.some((id) => /^(conv2d|batch_normalization|activation)_/.test(id)), 'no layer inside a module');
  assert.ok(chosen.length <= 16, `${chosen.length} default layers`);
  const want = kerasDepths(file);
  for (const l of ls) assert.equal(l.depth, want.get(l.id), l.id);
  // mixed0's four branches start at the same depth (one past the stem's last pool).
  const first = ls.filter((l) => l.op === 'Conv2D' && l.depth === byId(ls, 'max_pooling2d_2').depth! + 1);
  assert.ok(first.length >= 4, `${first.length} parallel first convolutions of mixed0`);
});

test('kind and layout from the shape: [784, 1] is a vector, not tokens', () => {
  assert.deepEqual(kindAndLayout([null, 784, 1], 'NHWC'), { kind: 'dense', layout: 'other' });
  assert.deepEqual(kindAndLayout([null, 1, 64], 'NHWC'), { kind: 'dense', layout: 'other' });
  assert.deepEqual(kindAndLayout([null, 17, 64], 'NHWC'), { kind: 'tokens', layout: 'NTD' });
  assert.deepEqual(kindAndLayout([null, 28, 28, 1], 'NHWC'), { kind: 'conv', layout: 'NHWC' });
});

test('auto reduction: a layer too wide even after the model rule is projected, and says so', () => {
  const l = (id: string, shape: number[], layout: LayerInfo['layout']): LayerInfo => ({ id, op: 'X', shape: [null, ...shape], kind: 'other', layout, index: 0, defaultSelected: true, isOutput: false });
  const plan = planReductions([l('a', [8, 4, 4], 'NCHW'), l('b', [4096], 'NC'), l('c', [3000, 2, 2], 'NCHW')], { name: 'auto' });
  assert.deepEqual(plan.reducers.map((r) => r.name), ['gap', 'project', 'project']);
  assert.equal(plan.reducers[0]!.note, undefined);
  assert.match(plan.reducers[1]!.note!, /instead of flatten: 4096 values exceed the auto cap of 2048/);
  assert.match(plan.reducers[2]!.note!, /instead of gap: 3000 values exceed/);
  assert.match(plan.reducers[2]!.describe, /project .*; instead of gap/);
  // A named pooling keeps vectors whole where other layers can be pooled, and refuses a model of vectors only.
  const cls = planReductions([l('t', [17, 64], 'NTD'), l('v', [64], 'NC')], { name: 'cls' });
  assert.deepEqual(cls.reducers.map((r) => r.name), ['cls', 'flatten']);
  assert.match(cls.reducers[1]!.note!, /kept whole/);
  assert.throws(() => planReductions([l('v', [64], 'NC')], { name: 'gap' }), UsageError);
});

test('--layout that contradicts the model input is a usage error naming what the model takes', () => {
  assert.throws(() => checkLayout([null, 28, 28, 1], 'NCHW', 'm.onnx'), (e: unknown) => e instanceof UsageError && /input \[N,28,28,1\] is NHWC/.test(e.message));
  assert.throws(() => checkLayout([null, 3, 32, 32], 'NHWC', 'm.onnx'), (e: unknown) => e instanceof UsageError && /is NCHW/.test(e.message));
  checkLayout([null, 28, 28, 1], 'NHWC', 'm.onnx');
  checkLayout([null, 3, 32, 3], 'NCHW', 'm.onnx'); // ambiguous: either may be meant
  checkLayout([null, 784], 'NCHW', 'm.onnx'); // not an image: only the flattening order
});
