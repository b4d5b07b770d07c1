/**
 * manifest.json: everything needed to trace a number back to its inputs — files with sha256,
 * package versions, backend, seed, preprocessing, the layers and their reductions.
 */
import path from 'node:path';
import type { Dataset, PreprocessSpec } from '../data/types.js';
import type { ModelRunner } from '../runtime/types.js';
import type { LayerPlan } from '../features/layer-plan.js';
import { sha256File } from '../data/hash.js';
import { toolVersions } from '../util/versions.js';

export const MANIFEST_SCHEMA = 'layerprobe.manifest/1';

export interface ManifestLayer {
  id: string;
  op: string;
  shape: (number | null)[];
  index: number;
  /** Depth normalised to [0,1] over the selected layers. */
  depth: number;
  reduction: string;
  dim: number;
  file?: string;
}

export interface ManifestModel {
  name: string;
  path: string;
  sha256: string;
  format: ModelRunner['format'];
  backend: string;
  inputShape: (number | null)[];
  preprocess: PreprocessSpec;
  batchMode?: string;
  layers: ManifestLayer[];
  outputLayer?: string;
}

export interface ManifestDataset {
  ref: string;
  name: string;
  classes: string[];
  itemShape: readonly number[];
  source: Dataset['source'];
  totalItems: number;
  selectedItems: number;
  perClassCounts: number[];
  sampling: { perClass?: number; limit?: number; seed: number };
}

export interface Manifest {
  schema: typeof MANIFEST_SCHEMA;
  command: string;
  createdAt: string;
  versions: Record<string, string | null>;
  seed: number;
  dataset: ManifestDataset;
  models: ManifestModel[];
  timings?: Record<string, number>;
}

export async function describeModel(
  name: string,
  runner: ModelRunner,
  preprocessSpec: PreprocessSpec,
  plans: readonly LayerPlan[],
  files?: Map<string, string>,
  outputLayer?: string,
): Promise<ManifestModel> {
  const n = plans.length;
  const batchMode = (runner as { batchMode?: unknown }).batchMode;
  return {
    name,
    path: path.resolve(runner.path),
    sha256: await sha256File(runner.path),
    format: runner.format,
    backend: runner.backend,
    inputShape: runner.inputShape,
    preprocess: preprocessSpec,
    ...(typeof batchMode === 'string' ? { batchMode } : {}),
    layers: plans.map((p, i) => ({
      id: p.layer.id,
      op: p.layer.op,
      shape: p.layer.shape,
      index: p.layer.index,
      depth: n > 1 ? i / (n - 1) : 1,
      reduction: p.reducer.describe,
      dim: p.reducer.dim,
      ...(files?.has(p.layer.id) ? { file: files.get(p.layer.id)! } : {}),
    })),
    ...(outputLayer ? { outputLayer } : {}),
  };
}

export function describeDataset(
  ref: string,
  ds: Dataset,
  indices: Int32Array,
  sampling: ManifestDataset['sampling'],
): ManifestDataset {
  const counts = new Array<number>(ds.classes.length).fill(0);
  for (const i of indices) counts[ds.labels[i]!]! += 1;
  return {
    ref,
    name: ds.name,
    classes: [...ds.classes],
    itemShape: ds.itemShape,
    source: ds.source,
    totalItems: ds.labels.length,
    selectedItems: indices.length,
    perClassCounts: counts,
    sampling,
  };
}

export function baseManifest(command: string, seed: number, dataset: ManifestDataset, models: ManifestModel[]): Manifest {
  return { schema: MANIFEST_SCHEMA, command, createdAt: new Date().toISOString(), versions: toolVersions(), seed, dataset, models };
}
