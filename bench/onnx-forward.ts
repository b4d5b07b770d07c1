/**
 * The audit's forward + reduce phase against a logits-only onnxruntime run (issue 15, item 9), on
 * the torch CNN fixture (test/fixtures/torch-fmnist-cnn/model.onnx) over the 10,000 Fashion-MNIST
 * test images, preprocessing included on both sides. The audit side is capture() with the model's
 * default layers, `--reduce auto` and the default batch: what `layerprobe audit` spends before its
 * statistics. The plain side is one onnxruntime session on the unmodified file at batch 256 with
 * onnxruntime's default threads. For where the time went before the runner made a session per
 * fetch set, the same fetch is also timed on a session with every intermediate tensor exposed as a
 * graph output (the runner's old single session: outputs block Conv+Relu and similar fusions and
 * must all be materialised). Prints one JSON line with the times and ratios.
 *
 *   node --import tsx bench/onnx-forward.ts [images]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { analyzeGraph, decodeModel, encodeModel, exposeTensors } from '../src/runtime/onnx-graph.js';
import { batchesOf } from '../src/data/sampling.js';
import { preprocess } from '../src/data/preprocess.js';
import { capture } from '../src/pipeline/capture.js';
import { prepareData, prepareModel } from '../src/pipeline/prepare.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const model = path.join(ROOT, 'test/fixtures/torch-fmnist-cnn/model.onnx');
if (!existsSync(model) || !existsSync('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')) {
  process.stderr.write('onnx-forward: needs test/fixtures/torch-fmnist-cnn and /usr/share/datasets/fashion-mnist\n');
  process.exit(0);
}
const limit = Number(process.argv[2] ?? 10000);
const data = await prepareData('/usr/share/datasets/fashion-mnist', {}, limit < 10000 ? { limit } : {});
const prepared = await prepareModel(model, data, { reduce: 'auto' });

// Logits only: the unmodified file, batch 256, preprocessing included.
const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', logSeverityLevel: 4 });
const inputName = session.inputNames[0]!;
const outputName = session.outputNames[0]!;
const per = prepared.runner.inputShape.slice(1) as number[];
async function plain(): Promise<number> {
  const t0 = performance.now();
  for await (const raw of batchesOf(data.dataset, data.indices, 256)) {
    const x = preprocess(raw, prepared.preprocess);
    await session.run({ [inputName]: new ort.Tensor('float32', x.data, [raw.shape[0], ...per]) }, [outputName]);
  }
  return performance.now() - t0;
}
async function audited(): Promise<{ forwardMs: number; reduceMs: number; totalMs: number }> {
  const t = await capture({ dataset: data.dataset, indices: data.indices, runner: prepared.runner, plans: prepared.plans, preprocess: prepared.preprocess, ...(prepared.output ? { outputLayerId: prepared.output.id } : {}), onBatch() {} });
  return { forwardMs: t.forwardMs, reduceMs: t.reduceMs, totalMs: t.totalMs };
}
// The old runner's session: every candidate tensor a graph output, the audit's layers fetched.
const exposedModel = decodeModel(new Uint8Array(await readFile(model)));
exposeTensors(exposedModel, analyzeGraph(exposedModel).candidates);
const exposed = await ort.InferenceSession.create(encodeModel(exposedModel), { graphOptimizationLevel: 'all', logSeverityLevel: 4 });
const fetchIds = [...prepared.plans.map((p) => p.layer.id), ...(prepared.output ? [prepared.output.id] : [])];
async function allExposed(): Promise<number> {
  const t0 = performance.now();
  for await (const raw of batchesOf(data.dataset, data.indices, 64)) {
    const x = preprocess(raw, prepared.preprocess);
    await exposed.run({ [inputName]: new ort.Tensor('float32', x.data, [raw.shape[0], ...per]) }, fetchIds);
  }
  return performance.now() - t0;
}
// One warm-up of each (session creation, first-run allocations), then the best of two.
await plain();
await audited();
await allExposed();
const plainMs = Math.min(await plain(), await plain());
const exposedMs = Math.min(await allExposed(), await allExposed());
const runs = [await audited(), await audited()].sort((a, b) => a.totalMs - b.totalMs);
const best = runs[0]!;
await session.release();
await exposed.release();
await prepared.runner.dispose();
process.stdout.write(
  JSON.stringify({
    case: `torch CNN forward, ${data.indices.length} Fashion-MNIST: audit forward+reduce (default layers ${prepared.plans.map((p) => p.layer.id).join(', ')}) vs logits-only onnxruntime at batch 256`,
    images: data.indices.length,
    logitsOnlyMs: Math.round(plainMs),
    auditForwardMs: Math.round(best.forwardMs),
    auditReduceMs: Math.round(best.reduceMs),
    auditForwardReduceMs: Math.round(best.forwardMs + best.reduceMs),
    ratio: Number(((best.forwardMs + best.reduceMs) / plainMs).toFixed(2)),
    allExposedForwardMs: Math.round(exposedMs),
    allExposedForwardRatio: Number((exposedMs / plainMs).toFixed(2)),
    withinTwice: (best.forwardMs + best.reduceMs) / plainMs <= 2,
  }) + '\n',
);
