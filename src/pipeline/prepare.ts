/**
 * Shared set-up for every command that runs a model over data: open the dataset and the model,
 * choose the items, the layers, the preprocessing and the reductions, and fail early with a clear
 * message before any heavy work starts.
 */
import path from 'node:path';
import { openDataset, type OpenDatasetOptions } from '../data/open.js';
import { checkSamplingCounts, selectIndices } from '../data/sampling.js';
import type { Dataset, PreprocessSpec } from '../data/types.js';
import { parseReduction, planReductions, type ReductionSpec } from '../features/reduce.js';
import { openModel } from '../runtime/open.js';
import type { Engine } from '../runtime/tfjs-onnx/engine.js';
import { outputLayer, selectLayers } from '../runtime/select.js';
import type { LayerInfo, ModelRunner } from '../runtime/types.js';
import { UsageError } from '../errors.js';
import { inferPreprocess } from '../data/fit-input.js';
import type { LayerPlan } from './capture.js';

export interface SamplingOptions {
  perClass?: number;
  limit?: number;
  seed?: number;
}

export interface ModelOptions {
  /** Layer ids, globs, `op:Relu`, `kind:conv`, 'default' or 'all'. */
  layers?: string | string[];
  /** flatten | gap | cls | mean-token | project:K | auto[:cap]. */
  reduce?: string | ReductionSpec;
  preprocess?: Partial<PreprocessSpec>;
  /** Display name; defaults to the file's folder or stem. */
  name?: string;
  /** Engine for TF.js models: auto (default: onnxruntime after a check on the first batch, else TF.js), onnx, tfjs. */
  engine?: Engine;
}

export interface PreparedData {
  ref: string;
  dataset: Dataset;
  indices: Int32Array;
  seed: number;
  sampling: SamplingOptions & { seed: number };
}

export interface PreparedModel {
  name: string;
  runner: ModelRunner;
  preprocess: PreprocessSpec;
  plans: LayerPlan[];
  /** The model's reduction rule in one line (planReductions); layers that depart from it carry reducer.note. */
  reductionRule: string;
  output: LayerInfo | undefined;
}

export async function prepareData(ref: string, datasetOptions: OpenDatasetOptions, sampling: SamplingOptions): Promise<PreparedData> {
  // Before the dataset is opened: a bad count should not wait for a 60k-image decode.
  checkSamplingCounts(sampling);
  const dataset = await openDataset(ref, datasetOptions);
  if (dataset.classes.length < 2) {
    throw new UsageError(`dataset ${ref} has ${dataset.classes.length} class${dataset.classes.length === 1 ? '' : 'es'}; layer geometry needs at least two`);
  }
  const seed = sampling.seed ?? 0;
  const indices = selectIndices(dataset.labels, dataset.classes.length, { ...sampling, seed });
  if (indices.length === 0) throw new UsageError(`dataset ${ref} has no items to use`);
  // Only the sampling fields: callers pass their whole options object (models, out, gates, …).
  const recorded = { ...(sampling.perClass !== undefined ? { perClass: sampling.perClass } : {}), ...(sampling.limit !== undefined ? { limit: sampling.limit } : {}), seed };
  return { ref, dataset, indices, seed, sampling: recorded };
}

export function modelDisplayName(file: string): string {
  const base = path.basename(file);
  const stem = base.replace(/\.(onnx|json)$/i, '');
  return stem === 'model' ? path.basename(path.dirname(path.resolve(file))) : stem;
}

/**
 * A layout the user gave must be one the model can take: an image input whose channel axis is
 * unambiguous ([N,28,28,1] or [N,3,32,32]) takes only its own layout, and feeding the other would
 * silently scramble pixels (or, for one channel, do nothing while the manifest says otherwise).
 */
export function checkLayout(inputShape: readonly (number | null)[], given: PreprocessSpec['layout'] | undefined, ref: string): void {
  const dims = inputShape.slice(1);
  if (given === undefined || dims.length !== 3) return;
  const ch = (d: number | null | undefined): boolean => d === 1 || d === 3;
  const accepts = ch(dims[2]) && !ch(dims[0]) ? 'NHWC' : ch(dims[0]) && !ch(dims[2]) ? 'NCHW' : null;
  if (accepts !== null && accepts !== given) {
    const shape = `[N,${dims.map((d) => d ?? '?').join(',')}]`;
    throw new UsageError(`--layout ${given} does not fit model ${ref}: its input ${shape} is ${accepts}`, `drop --layout (the layout is inferred from the input shape) or pass --layout ${accepts}`);
  }
}

export async function prepareModel(ref: string, data: PreparedData, opts: ModelOptions): Promise<PreparedModel> {
  const runner = await openModel(ref, opts.engine ? { engine: opts.engine } : {});
  try {
    const all = runner.layers();
    const chosen = selectLayers(all, opts.layers, ref);
    if (chosen.length === 0) {
      throw new UsageError(`no layers selected in ${ref}`, `run \`layerprobe layers ${ref}\` to see the layer ids`);
    }
    const spec = typeof opts.reduce === 'string' ? parseReduction(opts.reduce) : (opts.reduce ?? { name: 'flatten' as const });
    const { reducers, rule } = planReductions(chosen, spec, data.seed);
    const plans = chosen.map((layer, i) => ({ layer, reducer: reducers[i]! }));
    checkLayout(runner.inputShape, opts.preprocess?.layout, ref);
    const preprocess = inferPreprocess(runner.inputShape, data.dataset, opts.preprocess);
    return { name: opts.name ?? modelDisplayName(runner.path), runner, preprocess, plans, reductionRule: rule, output: outputLayer(all) };
  } catch (e) {
    await runner.dispose();
    throw e;
  }
}
