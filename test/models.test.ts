/**
 * The shipped reference models (models/fmnist-{mlp,cnn,vit}): each loads from both formats
 * through the toolkit's runners, reaches its card's test accuracy (±0.2 points) on the shipped
 * Fashion-MNIST test set with the card's own preprocessing, and its ONNX logits agree with
 * TF.js to 1e-4. The card's file digests, layer ids and size limit are checked too.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { hashFile } from '../src/data/hash.js';
import { openDataset } from '../src/data/open.js';
import { parsePreprocess, preprocess } from '../src/data/preprocess.js';
import type { Dataset } from '../src/data/types.js';
import { openOnnxModel } from '../src/runtime/onnx.js';
import { openTfjsModel } from '../src/runtime/tfjs.js';
import type { ModelRunner } from '../src/runtime/types.js';
import type { ModelCard } from '../src/train/card.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MODELS = ['fmnist-mlp', 'fmnist-cnn', 'fmnist-vit'];
const FLOORS: Record<string, number> = { 'fmnist-mlp': 0.87, 'fmnist-cnn': 0.9, 'fmnist-vit': 0.84 };

let ds: Dataset;

before(async () => {
  ds = await openDataset('fashion-mnist');
});

async function logits(runner: ModelRunner, card: ModelCard): Promise<Float32Array> {
  const spec = parsePreprocess(card.preprocess);
  const out = runner.layers().find((l) => l.isOutput)!;
  const k = out.shape[1] as number;
  const all = new Float32Array(ds.labels.length * k);
  const bs = 1000;
  for (let start = 0; start < ds.labels.length; start += bs) {
    const idx = Int32Array.from({ length: Math.min(bs, ds.labels.length - start) }, (_, i) => start + i);
    const res = await runner.run(preprocess(await ds.read(idx), spec), [out.id]);
    all.set(res.get(out.id)!.data, start * k);
  }
  return all;
}

function accuracy(z: Float32Array, labels: Int32Array): number {
  const k = z.length / labels.length;
  let hits = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (z[i * k + c]! > z[i * k + best]!) best = c;
    if (best === labels[i]) hits++;
  }
  return hits / labels.length;
}

describe('shipped reference models', () => {
  test('the test set ships with the package', () => {
    assert.equal(ds.labels.length, 10000);
    // $LAYERPROBE_DATA is searched before the package's own copy; the data must be the same either way.
    if (!process.env.LAYERPROBE_DATA) assert.equal(ds.source.detail?.location, 'package');
    assert.match(String(ds.source.detail?.checksum), /^(official|same-content)$/);
  });

  for (const name of MODELS) {
    test(name, async () => {
      const dir = path.join(ROOT, 'models', name);
      const card = JSON.parse(await fs.readFile(path.join(dir, 'card.json'), 'utf8')) as ModelCard;
      const files = (await fs.readdir(dir)).sort();
      assert.deepEqual(files, ['MODEL_CARD.md', 'card.json', 'model.json', 'model.onnx', 'weights.bin']);
      let bytes = 0;
      for (const f of files) bytes += (await fs.stat(path.join(dir, f))).size;
      assert.ok(bytes <= 5 * 1024 * 1024, `${name} is ${bytes} bytes`);
      for (const [f, v] of Object.entries(card.files ?? {})) assert.equal(await hashFile(path.join(dir, f)), v.sha256, `${f} digest`);
      assert.ok(card.metrics.testAccuracy >= FLOORS[name]!, `card accuracy ${card.metrics.testAccuracy}`);

      const tfr = await openTfjsModel(path.join(dir, 'model.json'));
      const ort = await openOnnxModel(path.join(dir, 'model.onnx'));
      try {
        assert.deepEqual(tfr.layers().filter((l) => l.defaultSelected).map((l) => l.id), card.architecture.defaultLayers);
        const onnxIds = new Set(ort.layers().map((l) => l.id));
        for (const l of card.architecture.layers) assert.ok(onnxIds.has(l.name), `ONNX has layer ${l.name}`);
        const [a, b] = [await logits(tfr, card), await logits(ort, card)];
        let diff = 0;
        for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
        assert.ok(diff <= 1e-4, `max |ONNX − TF.js| logit difference ${diff}`);
        for (const [format, z] of [['tfjs', a], ['onnx', b]] as const) {
          const acc = accuracy(z, ds.labels);
          assert.ok(Math.abs(acc - card.metrics.testAccuracy) <= 0.002, `${format} accuracy ${acc} vs card ${card.metrics.testAccuracy}`);
        }
      } finally {
        await tfr.dispose();
        await ort.dispose();
      }
    });
  }
});
