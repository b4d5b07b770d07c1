/**
 * `extract`: stream every selected layer's (reduced) activations to .npy files that numpy reads,
 * with labels, dataset indices, the model output and a manifest. Memory stays at one batch.
 */
import path from 'node:path';
import type { OpenDatasetOptions } from '../data/open.js';
import { NpyWriter } from '../data/npy.js';
import { createRunFolder, fileStems, writeFileAtomic } from '../report/run-folder.js';
import { baseManifest, describeDataset, describeModel, type Manifest } from '../report/manifest.js';
import { capture, type CaptureTimings } from './capture.js';
import { prepareData, prepareModel, type ModelOptions, type SamplingOptions } from './prepare.js';
import { valuesPerItem } from '../runtime/types.js';

export interface ExtractOptions extends ModelOptions, SamplingOptions {
  model: string;
  dataset: string;
  datasetOptions?: OpenDatasetOptions;
  out: string;
  force?: boolean;
  batchSize?: number;
  /** Working-memory budget of one forward pass in bytes (default runtime/memory-budget.ts DEFAULT_MAX_MEMORY). */
  maxMemory?: number;
  /** Also write the model's output tensor as output.npy (default true). */
  includeOutput?: boolean;
  command?: string;
  onProgress?(done: number, total: number): void;
}

export interface ExtractResult {
  outDir: string;
  manifest: Manifest;
  timings: CaptureTimings;
}

export async function extract(opts: ExtractOptions): Promise<ExtractResult> {
  const data = await prepareData(opts.dataset, opts.datasetOptions ?? {}, opts);
  const model = await prepareModel(opts.model, data, { ...opts, reduce: opts.reduce ?? 'flatten' });
  const folder = await createRunFolder(opts.out, { force: opts.force ?? false, inputs: [opts.model, opts.dataset] });
  const writers = new Map<string, NpyWriter>();
  try {
    const n = data.indices.length;
    const stems = fileStems(model.plans.map((p) => p.layer.id));
    const files = new Map<string, string>();
    for (const plan of model.plans) {
      const file = `${stems.get(plan.layer.id)}.npy`;
      files.set(plan.layer.id, file);
      writers.set(plan.layer.id, await NpyWriter.create(path.join(folder.workDir, file), [n, plan.reducer.dim], 'float32'));
    }
    const labels = await NpyWriter.create(path.join(folder.workDir, 'labels.npy'), [n], 'int32');
    const indices = await NpyWriter.create(path.join(folder.workDir, 'indices.npy'), [n], 'int32');
    const out = opts.includeOutput !== false ? model.output : undefined;
    const outWriter = out
      ? await NpyWriter.create(path.join(folder.workDir, 'output.npy'), [n, valuesPerItem(out.shape)], 'float32')
      : undefined;
    const timings = await capture({
      dataset: data.dataset,
      indices: data.indices,
      runner: model.runner,
      plans: model.plans,
      preprocess: model.preprocess,
      batchSize: opts.batchSize ?? 64,
      ...(opts.maxMemory !== undefined ? { maxMemory: opts.maxMemory } : {}),
      ...(out ? { outputLayerId: out.id } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      async onBatch(b) {
        for (const [id, feats] of b.features) await writers.get(id)!.write(feats);
        await labels.write(b.raw.labels);
        await indices.write(b.raw.indices);
        if (outWriter && b.output) await outWriter.write(b.output.data);
      },
    });
    for (const w of [...writers.values(), labels, indices, ...(outWriter ? [outWriter] : [])]) await w.close();
    writers.clear();
    const manifest = baseManifest(opts.command ?? 'extract', data.seed, describeDataset(data.ref, data.dataset, data.indices, data.sampling), [
      await describeModel(model.name, model.runner, model.preprocess, model.plans, files, out?.id),
    ]);
    manifest.timings = { forwardMs: timings.forwardMs, reduceMs: timings.reduceMs, writeMs: timings.sinkMs, totalMs: timings.totalMs };
    await writeFileAtomic(path.join(folder.workDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    const outDir = await folder.commit();
    return { outDir, manifest, timings };
  } catch (e) {
    for (const w of writers.values()) await w.close().catch(() => undefined);
    await folder.abort();
    throw e;
  } finally {
    await model.runner.dispose();
  }
}
