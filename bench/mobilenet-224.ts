/**
 * A 224-px MobileNetV2 (TF.js layers model, seeded random weights: test/helpers/mobilenet.ts) over
 * Fashion-MNIST test images resized to 224×224×3, at defaults (default layers, `--reduce auto`,
 * default batch and memory budget), each path in its own process for its own peak RSS:
 *   - default: engine auto, i.e. the model converted to ONNX, checked on the first batch, run by
 *     onnxruntime (forward of the default layers + reductions, as `audit` spends it);
 *   - tfjs: the same capture with --engine tfjs (TF.js on wasm);
 *   - ort-logits: onnxruntime on the converted file alone, logits only, batch 64, preprocessing
 *     included: the speed the default path is measured against.
 * Targets (issue 15): default within 1.5× of ort-logits, at least 5× tfjs, peak RSS under 3 GB.
 * Prints one JSON line.
 *
 *   node --import tsx bench/mobilenet-224.ts [images]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { batchesOf } from '../src/data/sampling.js';
import { preprocess } from '../src/data/preprocess.js';
import { capture } from '../src/pipeline/capture.js';
import { prepareData, prepareModel } from '../src/pipeline/prepare.js';
import { loadTf } from '../src/runtime/backend.js';
import { conversionCacheDir } from '../src/runtime/tfjs-onnx/engine.js';
import { openTfjsModel } from '../src/runtime/tfjs.js';
import { writeMobileNetV2 } from '../test/helpers/mobilenet.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DIR = path.join(os.tmpdir(), 'layerprobe-bench', 'mobilenetv2-224');
const MODEL = path.join(DIR, 'model.json');
const INPUT = { size: [224, 224] as [number, number], channels: 3 as const };

type Mode = 'default' | 'tfjs' | 'ort-logits';
interface Row {
  mode: Mode;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  peakRssMiB: number;
  /** CPU seconds (user + system) of the whole process: on a shared machine wall time says little. */
  cpuSeconds: number;
  backend: string;
  batch: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function child(mode: Mode, limit: number): Promise<Row> {
  const data = await prepareData('/usr/share/datasets/fashion-mnist', {}, { limit });
  const model = await prepareModel(MODEL, data, { reduce: 'auto', preprocess: INPUT, engine: mode === 'tfjs' ? 'tfjs' : 'auto' });
  let backend = model.runner.backend;
  let batch = 64;
  const t0 = performance.now();
  if (mode === 'ort-logits') {
    const tfr = await openTfjsModel(MODEL);
    const file = path.join(conversionCacheDir(), `${tfr.contentSha256}.onnx`);
    await tfr.dispose();
    const session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all', logSeverityLevel: 4 });
    backend = 'onnxruntime-node (converted file, logits only)';
    const t1 = performance.now();
    for await (const raw of batchesOf(data.dataset, data.indices, batch)) {
      const x = preprocess(raw, model.preprocess);
      await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.data, [raw.shape[0], 224, 224, 3]) }, [session.outputNames[0]!]);
    }
    const seconds = (performance.now() - t1) / 1000;
    await session.release();
    await model.runner.dispose();
    return { mode, images: data.indices.length, seconds, imagesPerSecond: data.indices.length / seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, cpuSeconds: cpuSeconds(), backend, batch };
  }
  const r = await capture({ dataset: data.dataset, indices: data.indices, runner: model.runner, plans: model.plans, preprocess: model.preprocess, ...(model.output ? { outputLayerId: model.output.id } : {}), onBatch() {} });
  const seconds = (performance.now() - t0) / 1000;
  backend = model.runner.backend;
  batch = r.batchSize;
  await model.runner.dispose();
  return { mode, images: r.images, seconds, imagesPerSecond: r.images / seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, cpuSeconds: cpuSeconds(), backend, batch };
}

const [, , first, second, third] = process.argv;
if (first === 'child') {
  process.stdout.write(JSON.stringify(await child(second as Mode, Number(third))) + '\n');
} else {
  if (!existsSync('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')) {
    process.stderr.write('mobilenet-224: needs /usr/share/datasets/fashion-mnist\n');
    process.exit(0);
  }
  const limit = Number(first ?? 200);
  if (!existsSync(MODEL)) {
    await mkdir(DIR, { recursive: true });
    await writeMobileNetV2((await loadTf()).tf, DIR, { size: 224, alpha: 1, classes: 1000, seed: 1 });
  }
  const rows: Row[] = [];
  // default first: it converts (and caches) the ONNX file that ort-logits runs.
  for (const mode of ['default', 'ort-logits', 'tfjs'] as const) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', mode, String(limit)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`mobilenet-224 ${mode} failed: ${r.stderr}`);
    rows.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as Row);
  }
  const [def, logits, tfjs] = rows as [Row, Row, Row];
  const round = (x: number, d = 1): number => Number(x.toFixed(d));
  process.stdout.write(
    JSON.stringify({
      case: `MobileNetV2 224 px (TF.js layers, random weights), ${def.images} Fashion-MNIST resized, defaults`,
      rows: rows.map((r) => ({ ...r, seconds: round(r.seconds), imagesPerSecond: round(r.imagesPerSecond), peakRssMiB: Math.round(r.peakRssMiB), cpuSeconds: round(r.cpuSeconds) })),
      cpus: os.cpus().length,
      loadAverage: os.loadavg().map((x) => round(x, 2)),
      defaultOverOrtLogitsTime: round(def.seconds / logits.seconds, 2),
      defaultOverTfjsSpeed: round(def.imagesPerSecond / tfjs.imagesPerSecond, 2),
      targets: {
        withinOneAndHalfOfOrt: def.seconds / logits.seconds <= 1.5,
        atLeastFiveTimesTfjs: def.imagesPerSecond / tfjs.imagesPerSecond >= 5,
        peakRssUnder3GB: def.peakRssMiB * 1024 * 1024 < 3e9,
      },
    }) + '\n',
  );
}
