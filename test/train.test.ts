/**
 * train(): refusals before any training (exit 2), seeded reproducibility, and what a model
 * folder holds — a tiny ViT trained for a few steps must load back through the toolkit's own
 * TF.js loader with its transformer blocks as the default layers. Training runs on the real
 * Fashion-MNIST training split (skipped where it is not installed).
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { datasetInfo } from '../src/data/registry.js';
import { UsageError } from '../src/errors.js';
import { loadTf } from '../src/runtime/backend.js';
import { openTfjsModel } from '../src/runtime/tfjs.js';
import { learningRateAt } from '../src/train/loop.js';
import { train } from '../src/train/train.js';

let tmp: string;
let hasTrain = false;

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'lp-train-'));
  hasTrain = (await datasetInfo('fashion-mnist')).splits.train.available;
});

after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function rejectsUsage(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('train refuses bad requests before training (exit 2)', () => {
  test('unknown architecture', async () => {
    await rejectsUsage(train({ arch: 'resnet', dataset: 'fashion-mnist', out: path.join(tmp, 'x') }), /unknown architecture `resnet`/);
    assert.equal(existsSync(path.join(tmp, 'x')), false);
  });

  test('a dataset without a training split', async () => {
    const csv = path.join(tmp, 'items.csv');
    await fs.writeFile(csv, 'label,p0\n0,1\n');
    await rejectsUsage(train({ arch: 'mlp', dataset: csv, out: path.join(tmp, 'y') }), /has no training split/);
    const testOnly = path.join(tmp, 'test-only');
    await fs.mkdir(testOnly);
    await fs.writeFile(path.join(testOnly, 't10k-images-idx3-ubyte'), '');
    await fs.writeFile(path.join(testOnly, 't10k-labels-idx1-ubyte'), '');
    await rejectsUsage(train({ arch: 'mlp', dataset: testOnly, out: path.join(tmp, 'y') }), /has no training split/);
  });

  test('an output folder that cannot be written', async () => {
    const file = path.join(tmp, 'a-file');
    await fs.writeFile(file, 'x');
    await rejectsUsage(train({ arch: 'mlp', dataset: 'fashion-mnist', out: path.join(file, 'model') }), /cannot write/);
  });

  test('an existing output folder without force, and bad options', async () => {
    const existing = path.join(tmp, 'existing');
    await fs.mkdir(existing);
    await rejectsUsage(train({ arch: 'mlp', dataset: 'fashion-mnist', out: existing }), /already exists/);
    await rejectsUsage(train({ arch: 'mlp', dataset: 'fashion-mnist', out: path.join(tmp, 'z'), epochs: 0 }), /--epochs/);
    await rejectsUsage(train({ arch: 'vit', dataset: 'fashion-mnist', out: path.join(tmp, 'z'), patch: 5 }), /--patch 5/);
    await rejectsUsage(train({ arch: 'cnn', dataset: 'fashion-mnist', out: path.join(tmp, 'z'), depth: 4 }), /too deep/);
  });
});

test('learning-rate schedule: linear warm-up, cosine to zero', () => {
  assert.equal(learningRateAt(0, 100, 1, 10), 0.1);
  assert.equal(learningRateAt(9, 100, 1, 10), 1);
  assert.ok(Math.abs(learningRateAt(10, 100, 1, 10) - 1) < 1e-12);
  assert.ok(Math.abs(learningRateAt(55, 100, 1, 10) - 0.5) < 1e-12);
  assert.ok(learningRateAt(99, 100, 1, 10) < 0.001);
});

describe('training on Fashion-MNIST', () => {
  test('same seed, same model; another seed, another model', async (t) => {
    if (!hasTrain) return t.skip('fashion-mnist training split not installed');
    // 200 steps of 32 images; the test set is cut to 2,000 images to keep this quick.
    const run = (seed: number, name: string) =>
      train({ arch: 'mlp', dataset: 'fashion-mnist', out: path.join(tmp, name), seed, epochs: 1, width: 64, batchSize: 32, limit: 6400, testLimit: 2000, evalTrain: false });
    const a = await run(5, 'a');
    const b = await run(5, 'b');
    const c = await run(6, 'c');
    assert.ok(a.card.metrics.testAccuracy > 0.7, `accuracy ${a.card.metrics.testAccuracy}`);
    assert.ok(Math.abs(a.card.metrics.testAccuracy - b.card.metrics.testAccuracy) <= 0.001);
    // Bit-identical, in fact: the wasm backend is deterministic on one thread.
    assert.deepEqual(await fs.readFile(path.join(a.outDir, 'weights.bin')), await fs.readFile(path.join(b.outDir, 'weights.bin')));
    assert.notDeepEqual(await fs.readFile(path.join(a.outDir, 'weights.bin')), await fs.readFile(path.join(c.outDir, 'weights.bin')));
  });

  test('a tiny ViT trains and its folder loads through openTfjsModel, blocks selected by default', async (t) => {
    if (!hasTrain) return t.skip('fashion-mnist training split not installed');
    const out = path.join(tmp, 'vit');
    const r = await train({
      arch: 'vit', dataset: 'fashion-mnist', out, epochs: 1, width: 16, depth: 2, heads: 2, patch: 7,
      batchSize: 32, limit: 640, testLimit: 200, warmupSteps: 5, onnx: true,
    });
    assert.deepEqual((await fs.readdir(out)).sort(), ['MODEL_CARD.md', 'card.json', 'model.json', 'model.onnx', 'weights.bin']);
    // No temp folder left beside it.
    assert.deepEqual((await fs.readdir(tmp)).filter((f) => f.includes('vit')), ['vit']);
    const card = JSON.parse(await fs.readFile(path.join(out, 'card.json'), 'utf8')) as typeof r.card;
    assert.deepEqual(card.preprocess, { scale: 255, layout: 'NHWC' });
    assert.equal(card.seed, 0);
    assert.equal(card.backend.name, `tfjs ${(await loadTf()).backend}`);
    // The block outputs and the head's input.
    assert.deepEqual(card.architecture.defaultLayers, ['block_1', 'block_2', 'cls']);
    assert.ok(card.metrics.history.length === 1 && card.wallTimeSeconds > 0);
    assert.ok(card.files?.['model.onnx']?.sha256.match(/^[0-9a-f]{64}$/));
    const md = await fs.readFile(path.join(out, 'MODEL_CARD.md'), 'utf8');
    assert.match(md, /test accuracy/);
    assert.match(md, /layerprobe train --arch vit/);

    const runner = await openTfjsModel(out);
    try {
      const layers = runner.layers();
      const blocks = layers.filter((l) => l.op === 'TransformerBlock');
      assert.deepEqual(blocks.map((b) => [b.id, b.layout, b.defaultSelected]), [
        ['block_1', 'NTD', true],
        ['block_2', 'NTD', true],
      ]);
      assert.deepEqual(layers.find((l) => l.isOutput)?.shape, [null, 10]);
      const x = { data: new Float32Array(3 * 784).fill(0.5), shape: [3, 28, 28, 1] };
      const res = await runner.run(x, ['block_2', 'cls', 'logits']);
      assert.deepEqual(res.get('block_2')!.shape, [3, 17, 16]);
      assert.deepEqual(res.get('cls')!.shape, [3, 16]);
      assert.ok(res.get('logits')!.data.every(Number.isFinite));
    } finally {
      await runner.dispose();
    }
  });
});
