/**
 * Opening a TF.js model: tell a layers model from a graph model by its model.json and hand it to
 * the matching runner (runtime/tfjs-layers-runner.ts, runtime/tfjs-graph-runner.ts), both behind
 * ModelRunner.
 */
import { createHash } from 'node:crypto';
import type * as tfTypes from './tf-types.js';
import { RuntimeFailure } from '../errors.js';
import { loadTf } from './backend.js';
import { loadModelFiles } from './tfjs-io.js';
import { isRecord, type TfjsFormat, type TfjsRunner } from './tfjs-runner.js';
import { TfjsLayersRunner } from './tfjs-layers-runner.js';
import { TfjsGraphRunner } from './tfjs-graph-runner.js';

/** Layers or graph model, from the `format` field or, for files older than TF.js 1.0, the topology's shape. */
export function detectTfjsFormat(json: { format?: unknown; modelTopology?: unknown }): TfjsFormat | null {
  if (json.format === 'layers-model') return 'tfjs-layers';
  if (json.format === 'graph-model') return 'tfjs-graph';
  const topo = json.modelTopology;
  if (!isRecord(topo)) return null;
  if (Array.isArray(topo.node)) return 'tfjs-graph';
  // Keras-converted files wrap the model config in `model_config`; TF.js-saved ones do not.
  if ((typeof topo.class_name === 'string' && 'config' in topo) || isRecord(topo.model_config)) return 'tfjs-layers';
  return null;
}


/**
 * sha256 of what the model computes with: its topology, weight manifest and weight bytes (file
 * names and formatting of model.json do not count). Keys the cache of ONNX conversions.
 */
export function tfjsContentSha256(artifacts: tfTypes.io.ModelArtifacts): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(artifacts.modelTopology ?? null));
  h.update(JSON.stringify(artifacts.weightSpecs ?? []));
  const data = artifacts.weightData;
  for (const b of data === undefined ? [] : Array.isArray(data) ? data : [data]) h.update(new Uint8Array(b));
  return h.digest('hex');
}

/** Open a TF.js model.json (layers or graph model) with the process's TF.js backend. */
export async function openTfjsModel(modelJsonPath: string): Promise<TfjsRunner> {
  const { file, artifacts } = await loadModelFiles(modelJsonPath);
  const format = detectTfjsFormat(artifacts);
  if (format === null) {
    throw new RuntimeFailure(
      `\`${file}\` is neither a TF.js layers model nor a graph model (no modelTopology with class_name/config or a node list)`,
    );
  }
  if (!isRecord(artifacts.modelTopology)) throw new RuntimeFailure(`\`${file}\` has no modelTopology`);
  const { tf, backend } = await loadTf();
  const runner = format === 'tfjs-layers' ? await TfjsLayersRunner.create(tf, backend, file, artifacts) : await TfjsGraphRunner.create(tf, backend, file, artifacts);
  runner.contentSha256 = tfjsContentSha256(artifacts);
  return runner;
}
