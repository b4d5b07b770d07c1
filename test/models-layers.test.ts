/** The shipped models expose the same default layers, with the same ids, in both formats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { listLayers } from '../src/api/layers.js';
import { ROOT } from './helpers/fixtures.js';

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
