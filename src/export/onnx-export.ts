/**
 * `layerprobe export`: a TF.js layers model written as an ONNX file (runtime/tfjs-onnx/convert.ts
 * does the conversion). After writing, the two formats are run on the same inputs and must agree.
 */
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { loadTf } from '../runtime/backend.js';
import { openOnnxModel } from '../runtime/onnx.js';
import { openTfjsModel } from '../runtime/tfjs.js';
import { trackPartialFile } from '../report/run-folder.js';
import { registerVitLayers } from '../runtime/tfjs-layers/vit-layers.js';
import { Rng } from '../util/rng.js';
import { compareRunners, layersModelToOnnx, ONNX_OPSET } from '../runtime/tfjs-onnx/convert.js';

export { compareRunners, DEFAULT_LAYERS_KEY, exportableLayerClasses, layersModelToOnnx, nchwToNhwc, ONNX_OPSET, type ConvertOptions } from '../runtime/tfjs-onnx/convert.js';

export interface ExportOptions {
  /** TF.js layers model.json (or its folder). */
  model: string;
  /** Destination .onnx file. */
  out: string;
  force?: boolean;
  /** Compare the two formats on random inputs after writing (default true). */
  check?: boolean;
}

export interface ExportResult {
  out: string;
  bytes: number;
  opset: number;
  /** Layer ids present in both files. */
  layers: string[];
  defaultLayers: string[];
  /** Largest |ONNX − TF.js| over all shared layers on the check inputs (absent with check: false). */
  maxAbsDiff?: number;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** `compareRunners` on a TF.js model and an ONNX file, each opened for the comparison. */
export async function compareFormats(tfjsPath: string, onnxPath: string, input: { data: Float32Array; shape: number[] }): Promise<{ maxAbsDiff: number; worst: string; layers: string[] }> {
  registerVitLayers((await loadTf()).tf);
  const tfr = await openTfjsModel(tfjsPath);
  try {
    const ort = await openOnnxModel(onnxPath);
    try {
      return await compareRunners(tfr, ort, input);
    } finally {
      await ort.dispose();
    }
  } finally {
    await tfr.dispose();
  }
}

export async function exportOnnx(opts: ExportOptions): Promise<ExportResult> {
  const out = path.resolve(opts.out);
  if (!out.toLowerCase().endsWith('.onnx')) throw new UsageError(`--out ${opts.out} should name a .onnx file`);
  if ((await exists(out)) && !opts.force) throw new UsageError(`${opts.out} already exists`, 'pass --force to replace it');
  if (!(await exists(path.dirname(out)))) throw new UsageError(`folder ${path.dirname(opts.out)} does not exist`);
  if (opts.model.toLowerCase().endsWith('.onnx')) {
    throw new UsageError(`${opts.model} is already ONNX; export converts a TF.js layers model (model.json, or its folder) to ONNX`);
  }
  registerVitLayers((await loadTf()).tf);
  // One TF.js model serves the conversion and the check against the written file.
  const runner = await openTfjsModel(opts.model);
  try {
    const layersModel = runner.exportableLayersModel();
    if (!layersModel) {
      throw new RuntimeFailure(`${opts.model} is a TF.js graph model; only layers models (format "layers-model") can be exported`);
    }
    const defaultLayers = runner.layers().filter((l) => l.defaultSelected).map((l) => l.id);
    const bytes = await layersModelToOnnx(layersModel, { defaultLayers });
    const tmp = path.join(path.dirname(out), `.${path.basename(out)}.partial-${process.pid}.onnx`);
    const tracked = trackPartialFile(tmp);
    await writeFile(tmp, bytes);
    try {
      let maxAbsDiff: number | undefined;
      let layers: string[] = [];
      if (opts.check !== false) {
        const ort = await openOnnxModel(tmp);
        try {
          const perSample = ort.inputShape.slice(1) as number[];
          const rng = new Rng(17);
          const n = 8;
          const data = Float32Array.from({ length: n * perSample.reduce((p, d) => p * d, 1) }, () => rng.next());
          const cmp = await compareRunners(runner, ort, { data, shape: [n, ...perSample] });
          maxAbsDiff = cmp.maxAbsDiff;
          layers = cmp.layers;
          if (!(cmp.maxAbsDiff <= 1e-3)) {
            throw new RuntimeFailure(
              `the exported model disagrees with the TF.js model (max |difference| ${cmp.maxAbsDiff.toExponential(2)} at layer \`${cmp.worst}\`); nothing was written`,
              'this is a bug in the exporter; please report it with the model',
            );
          }
        } finally {
          await ort.dispose();
        }
      } else {
        // Unchecked, the file must still load: a graph onnxruntime rejects is not an export.
        await (await openOnnxModel(tmp)).dispose();
      }
      await rename(tmp, out);
      return { out, bytes: bytes.byteLength, opset: ONNX_OPSET, layers, defaultLayers, ...(maxAbsDiff !== undefined ? { maxAbsDiff } : {}) };
    } catch (e) {
      await rm(tmp, { force: true });
      if (e instanceof RuntimeFailure || e instanceof UsageError) throw e;
      throw new RuntimeFailure(`exporting ${opts.model} failed: ${errorMessage(e)}`);
    } finally {
      tracked.release();
    }
  } finally {
    await runner.dispose();
  }
}

