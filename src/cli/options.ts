/** Flags shared by every command that runs a model over a dataset, and their parsing. */
import type { Argv } from 'yargs';
import type { OpenDatasetOptions } from '../data/open.js';
import type { PreprocessSpec } from '../data/types.js';
import { parsePreprocess } from '../data/preprocess.js';
import { UsageError } from '../errors.js';
import { parseMemorySize, useMaxMemory } from '../runtime/memory-budget.js';
import { useEngine } from '../runtime/open.js';
import { parseEngine } from '../runtime/tfjs-onnx/engine.js';

export interface DataArgs {
  dataset: string;
  split?: string;
  labels?: string;
  'csv-layout'?: string;
  'item-shape'?: string;
  'per-class'?: number;
  limit?: number;
  seed?: number;
  'batch-size'?: number;
  'max-memory'?: string;
  engine?: string;
}

export interface InputArgs {
  scale?: number;
  mean?: string;
  std?: string;
  layout?: string;
  size?: string;
  channels?: number;
  reshape?: string;
}

export function withDataOptions<T>(y: Argv<T>, opts: { requireDataset?: boolean } = {}): Argv<T & DataArgs> {
  return y
    .option('dataset', { alias: 'd', type: 'string', demandOption: opts.requireDataset ?? true, describe: 'registry name (fashion-mnist, mnist[:train]) or a path: IDX images file, image folder root/<class>/*, .csv, .npy', group: 'Data:' })
    .option('split', { type: 'string', choices: ['train', 'test'], describe: 'split for registry datasets and IDX folders (default test)', group: 'Data:' })
    .option('labels', { type: 'string', describe: 'labels file for .npy or IDX images', group: 'Data:' })
    .option('csv-layout', { type: 'string', choices: ['HWC', 'CHW'], describe: 'pixel order of CSV rows (default HWC)', group: 'Data:' })
    .option('item-shape', { type: 'string', describe: 'H,W,C of CSV items when not 28×28×1 or 32×32×3', group: 'Data:' })
    .option('per-class', { type: 'number', describe: 'seeded stratified sample: at most this many items per class', group: 'Data:' })
    .option('limit', { type: 'number', describe: 'at most this many items in all (stratified)', group: 'Data:' })
    .option('seed', { type: 'number', describe: 'seed for sampling, projections and every random choice (default 0)', group: 'Data:' })
    .option('batch-size', { type: 'number', describe: 'most images per forward pass (default 64; fewer when a batch would exceed --max-memory)', group: 'Data:' })
    .option('max-memory', { type: 'string', describe: 'memory budget of one forward pass, e.g. 2G or 512M (default: 1/8 of the machine, at most 2 GiB)', group: 'Data:' })
    .option('engine', { type: 'string', choices: ['auto', 'onnx', 'tfjs'], describe: 'engine for TF.js models: auto converts to ONNX and runs onnxruntime after checking the first batch against TF.js (default), onnx insists, tfjs never converts', group: 'Data:' }) as unknown as Argv<T & DataArgs>;
}

export function withInputOptions<T>(y: Argv<T>): Argv<T & InputArgs> {
  return y
    .option('scale', { type: 'number', describe: 'divide raw pixel values by this (default 255 for 8-bit data)', group: 'Model input:' })
    .option('mean', { type: 'string', describe: 'per-channel mean after scaling, e.g. 0.1307 or 0.485,0.456,0.406', group: 'Model input:' })
    .option('std', { type: 'string', describe: 'per-channel std after scaling', group: 'Model input:' })
    .option('layout', { type: 'string', choices: ['NCHW', 'NHWC'], describe: 'model input layout (default: inferred from the input shape)', group: 'Model input:' })
    .option('size', { type: 'string', describe: 'resize images to H,W', group: 'Model input:' })
    .option('channels', { type: 'number', choices: [1, 3], describe: 'convert images to 1 or 3 channels', group: 'Model input:' })
    .option('reshape', { type: 'string', describe: 'per-item input shape, e.g. 784 or 784,1', group: 'Model input:' }) as unknown as Argv<T & InputArgs>;
}

export function parseNumberList(flag: string, text: string | undefined, length?: number): number[] | undefined {
  if (text === undefined) return undefined;
  const parts = String(text).split(/[,x×]/).map((s) => s.trim()).filter((s) => s.length > 0);
  const nums = parts.map(Number);
  if (nums.length === 0 || nums.some((v) => !Number.isFinite(v)) || (length !== undefined && nums.length !== length)) {
    throw new UsageError(`--${flag} expects ${length ?? 'a list of'} comma-separated numbers (got \`${text}\`)`);
  }
  return nums;
}

export function datasetOptionsFrom(a: DataArgs): OpenDatasetOptions {
  const shape = parseNumberList('item-shape', a['item-shape'], 3);
  return {
    ...(a.split ? { split: a.split as 'train' | 'test' } : {}),
    ...(a.labels ? { labels: a.labels } : {}),
    ...(a['csv-layout'] ? { csvLayout: a['csv-layout'] as 'HWC' | 'CHW' } : {}),
    ...(shape ? { shape: shape as [number, number, number] } : {}),
  };
}

export function preprocessFrom(a: InputArgs): Partial<PreprocessSpec> {
  const size = parseNumberList('size', a.size, 2);
  const mean = parseNumberList('mean', a.mean);
  const std = parseNumberList('std', a.std);
  const reshape = parseNumberList('reshape', a.reshape);
  // One validation for flags and probe specs alike: the schema names the key, here as its flag.
  return parsePreprocess(
    {
      ...(a.scale !== undefined ? { scale: a.scale } : {}),
      ...(mean ? { mean } : {}),
      ...(std ? { std } : {}),
      ...(a.layout ? { layout: a.layout } : {}),
      ...(size ? { size } : {}),
      ...(a.channels ? { channels: a.channels } : {}),
      ...(reshape ? { reshape } : {}),
    },
    (key: string) => `--${key.split('.')[0]}`,
  );
}

export function samplingFrom(a: DataArgs): { perClass?: number; limit?: number; seed?: number } {
  const b = a['batch-size'];
  if (b !== undefined && (!Number.isInteger(b) || b < 1)) throw new UsageError(`--batch-size must be a positive integer (got ${b})`);
  // How the runs of this process use the machine: process-wide, like --execution-provider.
  if (a['max-memory'] !== undefined) useMaxMemory(parseMemorySize(a['max-memory']));
  if (a.engine !== undefined) useEngine(parseEngine(a.engine));
  return {
    ...(a['per-class'] !== undefined ? { perClass: a['per-class'] } : {}),
    ...(a.limit !== undefined ? { limit: a.limit } : {}),
    ...(a.seed !== undefined ? { seed: a.seed } : {}),
  };
}
