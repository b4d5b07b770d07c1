import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LayerprobeError, RuntimeFailure, UsageError } from '../src/errors.js';
import { outputLayer, selectLayers } from '../src/runtime/select.js';
import type { LayerInfo } from '../src/runtime/types.js';

function layer(id: string, op: string, rank: number, extra: Partial<LayerInfo> = {}): LayerInfo {
  const kind = rank === 4 ? 'conv' : rank === 2 ? 'dense' : rank === 3 ? 'tokens' : 'other';
  const layout = rank === 4 ? 'NCHW' : rank === 2 ? 'NC' : rank === 3 ? 'NTD' : 'other';
  return { id, op, shape: [null, ...new Array<number>(rank - 1).fill(4)], kind, layout, index: 0, defaultSelected: false, isOutput: false, ...extra };
}

const LAYERS: LayerInfo[] = [
  layer('input.1', 'Input', 4),
  layer('/conv1/Conv_output_0', 'Conv', 4),
  layer('/relu1/Relu_output_0', 'Relu', 4),
  layer('/pool1/MaxPool_output_0', 'MaxPool', 4, { defaultSelected: true }),
  layer('blocks/0/attn', 'MatMul', 3),
  layer('blocks/0/mlp', 'Gelu', 3, { defaultSelected: true }),
  layer('blocks/1/attn', 'MatMul', 3),
  layer('blocks/1/mlp', 'Gelu', 3, { defaultSelected: true }),
  layer('onnx::Relu_10', 'Relu', 2, { defaultSelected: true }),
  layer('logits', 'Gemm', 2, { isOutput: true }),
  layer('probs', 'Softmax', 2, { isOutput: true }),
].map((l, index) => ({ ...l, index }));

const ids = (ls: LayerInfo[]): string[] => ls.map((l) => l.id);

test('default selection when no spec or "default"', () => {
  const want = ['/pool1/MaxPool_output_0', 'blocks/0/mlp', 'blocks/1/mlp', 'onnx::Relu_10'];
  assert.deepEqual(ids(selectLayers(LAYERS)), want);
  assert.deepEqual(ids(selectLayers(LAYERS, 'default')), want);
  assert.deepEqual(ids(selectLayers(LAYERS, '')), want);
  assert.deepEqual(ids(selectLayers(LAYERS, [])), want);
});

test('"all" is every layer except the input', () => {
  const all = selectLayers(LAYERS, 'all');
  assert.equal(all.length, LAYERS.length - 1);
  assert.ok(!all.some((l) => l.op === 'Input'));
  assert.deepEqual(ids(all), ids(LAYERS.slice(1)));
});

test('exact ids, including ids with regex and glob-looking characters', () => {
  assert.deepEqual(ids(selectLayers(LAYERS, 'onnx::Relu_10')), ['onnx::Relu_10']);
  assert.deepEqual(ids(selectLayers(LAYERS, 'input.1')), ['input.1']);
});

test('globs: * crosses slashes, ? is one character', () => {
  assert.deepEqual(ids(selectLayers(LAYERS, 'blocks/*')), ['blocks/0/attn', 'blocks/0/mlp', 'blocks/1/attn', 'blocks/1/mlp']);
  assert.deepEqual(ids(selectLayers(LAYERS, 'blocks/?/mlp')), ['blocks/0/mlp', 'blocks/1/mlp']);
  assert.deepEqual(ids(selectLayers(LAYERS, '/conv*')), ['/conv1/Conv_output_0']);
  assert.deepEqual(ids(selectLayers(LAYERS, 'onnx::*')), ['onnx::Relu_10']);
  // A dot in a glob is literal, not "any character".
  assert.throws(() => selectLayers(LAYERS, 'input?1*x'), UsageError);
});

test('op: and kind: filters', () => {
  assert.deepEqual(ids(selectLayers(LAYERS, 'op:Relu')), ['/relu1/Relu_output_0', 'onnx::Relu_10']);
  assert.deepEqual(ids(selectLayers(LAYERS, 'op:relu|MaxPool')), ['/relu1/Relu_output_0', '/pool1/MaxPool_output_0', 'onnx::Relu_10']);
  assert.deepEqual(ids(selectLayers(LAYERS, 'kind:tokens')), ['blocks/0/attn', 'blocks/0/mlp', 'blocks/1/attn', 'blocks/1/mlp']);
  assert.deepEqual(ids(selectLayers(LAYERS, 'kind:conv')), ['input.1', '/conv1/Conv_output_0', '/relu1/Relu_output_0', '/pool1/MaxPool_output_0']);
});

test('items combine, deduplicate and keep model order', () => {
  const got = ids(selectLayers(LAYERS, 'logits, op:Relu,blocks/1/*, onnx::Relu_10'));
  assert.deepEqual(got, ['/relu1/Relu_output_0', 'blocks/1/attn', 'blocks/1/mlp', 'onnx::Relu_10', 'logits']);
  assert.deepEqual(ids(selectLayers(LAYERS, ['logits', 'default'])), ['/pool1/MaxPool_output_0', 'blocks/0/mlp', 'blocks/1/mlp', 'onnx::Relu_10', 'logits']);
});

test('unknown items are usage errors that name the closest layers', () => {
  const e = (() => {
    try {
      selectLayers(LAYERS, 'op:Relu,logit', 'model.onnx');
    } catch (err) {
      return err;
    }
    return null;
  })();
  assert.ok(e instanceof UsageError);
  assert.equal((e as LayerprobeError).exitCode, 2);
  assert.match(e.message, /^layer `logit` not found in model; did you mean `logits`/);
  assert.equal(e.hint, 'run `layerprobe layers model.onnx` to list layers');
  assert.throws(() => selectLayers(LAYERS, 'blocks/9/*'), (err: unknown) => err instanceof UsageError && /did you mean/.test(err.message));
  assert.throws(() => selectLayers(LAYERS, 'op:Rleu'), (err: unknown) => err instanceof UsageError && /`Relu`/.test(err.message));
  assert.throws(() => selectLayers(LAYERS, 'kind:conv2d'), (err: unknown) => err instanceof UsageError && /dense, conv, tokens, other/.test(err.message));
  assert.throws(() => selectLayers(LAYERS.slice(0, 4), 'kind:dense'), UsageError);
});

test('outputLayer is the first isOutput layer', () => {
  assert.equal(outputLayer(LAYERS).id, 'logits');
  assert.throws(() => outputLayer(LAYERS.slice(0, 3)), RuntimeFailure);
});
