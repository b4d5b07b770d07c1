/** layerprobe's programmatic API: the same operations and options as the CLI. */
export { extract, type ExtractOptions, type ExtractResult } from './pipeline/extract.js';
export { listLayers, type LayerListing } from './api/layers.js';
export { openDataset, listKnownDatasets, type OpenDatasetOptions } from './data/open.js';
export { fetchDataset, datasetInfo } from './data/registry.js';
export { selectIndices, batchesOf } from './data/sampling.js';
export { preprocess } from './data/preprocess.js';
export { readNpy, NpyWriter } from './data/npy.js';
export type { Dataset, RawBatch, PreprocessSpec, ModelInput } from './data/types.js';
export { openModel } from './runtime/open.js';
export { selectLayers } from './runtime/select.js';
export type { ModelRunner, LayerInfo, LayerTensor } from './runtime/types.js';
export { makeReducer, parseReduction, type Reducer, type ReductionSpec } from './features/reduce.js';
export { loadTf } from './runtime/backend.js';
export { LayerprobeError, UsageError, RuntimeFailure, ThresholdFailure } from './errors.js';
