/**
 * The engine that computes a TF.js model's numbers: TF.js itself (wasm, a few images/s at 224 px)
 * or onnxruntime on the model converted to ONNX (convert.ts), many times faster.
 *
 * `auto` (the default) converts the layers model (cached by the content sha256 of its topology
 * and weights), then checks the ONNX outputs against TF.js on the first rows of the first batch
 * it runs: the output layer within CHECK_REL_OUTPUT of its largest |value|, every requested hidden
 * layer within CHECK_REL_HIDDEN of its own. A model that cannot be converted (a layer class or
 * graph op the converters lack) or whose check fails runs on TF.js, and the runner says why in
 * `warnings()` and in its `backend` string (which the manifest, report and summary line print).
 * `onnx` makes those failures errors; `tfjs` never converts.
 *
 * Layer ids stay the TF.js layer (or graph node) names `layerprobe layers` shows, with TF.js shapes
 * and layouts: the converters (convert.ts for layers models, graph-convert.ts for graph models)
 * name each layer's ONNX output after the layer, and 4-D maps, NCHW inside a converted layers
 * model, are handed back NHWC as TF.js gives them.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { RuntimeFailure, UsageError, errorMessage } from '../../errors.js';
import { layerprobeVersion } from '../../util/versions.js';
import { isAllocationFailure } from '../memory-budget.js';
import { openOnnxModel, type OnnxRunner } from '../onnx.js';
import type { TfjsRunner } from '../tfjs-runner.js';
import type { ClassifierHead, LayerInfo, LayerTensor, ModelRunner } from '../types.js';
import { TfjsGraphRunner } from '../tfjs-graph-runner.js';
import { layersModelToOnnx, nchwToNhwc } from './convert.js';
import { graphModelToOnnx } from './graph-convert.js';

export type Engine = 'auto' | 'tfjs' | 'onnx';
export const ENGINES: readonly Engine[] = ['auto', 'tfjs', 'onnx'];

/** Largest |ONNX − TF.js| on the output layer, relative to the output's largest |value|. */
export const CHECK_REL_OUTPUT = 1e-4;
/** The same for hidden layers, whose deeper float sums reorder more between the two engines. */
export const CHECK_REL_HIDDEN = 1e-3;
/**
 * Rows of the first batch the check runs through TF.js. TF.js on wasm is the slow side (a 224-px
 * MobileNetV2 takes a third of a second per image), and a conversion error shows on any image.
 */
export const CHECK_ROWS = 4;

export function parseEngine(text: string): Engine {
  if (!(ENGINES as readonly string[]).includes(text)) throw new UsageError(`unknown engine \`${text}\``, 'use auto (default), onnx or tfjs');
  return text as Engine;
}

/** Where converted models are cached: $XDG_CACHE_HOME (or ~/.cache)/layerprobe/converted/<version>/. */
export function conversionCacheDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : path.join(env.HOME ?? homedir(), '.cache');
  return path.join(base, 'layerprobe', 'converted', layerprobeVersion());
}

/** The ONNX twin of a TF.js layers model, from the cache or converted now (and cached). */
async function convertedFile(tfjs: TfjsRunner): Promise<string> {
  if (!tfjs.contentSha256) throw new RuntimeFailure('internal: the TF.js model has no content hash');
  const file = path.join(conversionCacheDir(), `${tfjs.contentSha256}.onnx`);
  if (existsSync(file)) return file;
  const model = tfjs.exportableLayersModel();
  let bytes: Uint8Array;
  if (model) bytes = await layersModelToOnnx(model, { defaultLayers: tfjs.layers().filter((l) => l.defaultSelected).map((l) => l.id) });
  else if (tfjs instanceof TfjsGraphRunner) bytes = graphModelToOnnx(tfjs.conversionSource());
  else throw new RuntimeFailure('internal: a TF.js model that is neither a layers nor a graph model');
  await mkdir(path.dirname(file), { recursive: true });
  // Written whole under a temporary name, so a concurrent run never reads half a file.
  const tmp = `${file}.partial-${process.pid}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return file;
}

/** Every TF.js layer must exist in the ONNX graph with as many values per sample. */
function mapLayers(tfLayers: readonly LayerInfo[], onnx: OnnxRunner): Map<string, LayerInfo> {
  const byId = new Map(onnx.layers().map((l) => [l.id, l]));
  const size = (l: LayerInfo): number => l.shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  for (const l of tfLayers) {
    const o = byId.get(l.id);
    if (!o) throw new RuntimeFailure(`layer \`${l.id}\` has no tensor of that name in the converted graph`);
    if (size(o) !== size(l)) throw new RuntimeFailure(`layer \`${l.id}\` has ${size(l)} values per item in TF.js but ${size(o)} in the converted graph`);
  }
  return byId;
}

/** max |a − b| / max |a| over all values (0 when both are all zeros); NaN anywhere counts as Infinity. */
export function relativeDifference(ref: Float32Array, other: Float32Array): number {
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(other[i]! - ref[i]!);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    const a = Math.abs(ref[i]!);
    if (a > maxRef) maxRef = a;
  }
  if (maxDiff === 0) return 0;
  return maxDiff / (maxRef > 0 ? maxRef : 1);
}

type State = { engine: 'unchecked' } | { engine: 'onnx'; worst: number } | { engine: 'tfjs'; reason: string };

/**
 * A TF.js model run through onnxruntime once the first batch agrees, behind the TF.js runner's
 * own layer list. Until then (and after a failed check) it is the TF.js runner.
 */
export class ConvertedTfjsRunner implements ModelRunner {
  readonly format: TfjsRunner['format'];
  readonly path: string;
  readonly inputShape: (number | null)[];
  private state: State = { engine: 'unchecked' };
  private readonly tfLayers: Map<string, LayerInfo>;
  private readonly notes: string[] = [];
  private readonly mapsNchw: boolean;

  constructor(
    private readonly tfjs: TfjsRunner,
    private readonly onnx: OnnxRunner,
    private readonly onnxLayers: Map<string, LayerInfo>,
    private readonly strict: boolean,
  ) {
    // The layers converter stores 4-D maps NCHW; the graph converter keeps TensorFlow's NHWC.
    this.mapsNchw = tfjs.format === 'tfjs-layers';
    this.format = tfjs.format;
    this.path = tfjs.path;
    this.inputShape = tfjs.inputShape;
    this.tfLayers = new Map(tfjs.layers().map((l) => [l.id, l]));
  }

  /** Which engine computes the numbers, and for onnx how close the check came. */
  get backend(): string {
    switch (this.state.engine) {
      case 'unchecked':
        return `${this.onnx.backend} (converted from TF.js; to be checked against ${this.tfjs.backend} on the first batch)`;
      case 'onnx':
        return `${this.onnx.backend} (converted from TF.js; checked against ${this.tfjs.backend} on the first batch: output within ${this.state.worst.toExponential(1)} relative)`;
      case 'tfjs':
        return `${this.tfjs.backend} (ONNX conversion not used: ${this.state.reason})`;
    }
  }

  /** 'onnx' or 'tfjs' once the first batch has run; 'unchecked' before. */
  get engine(): State['engine'] {
    return this.state.engine;
  }

  warnings(): string[] {
    return [...this.notes];
  }

  layers(): LayerInfo[] {
    return this.tfjs.layers();
  }

  async run(input: { data: Float32Array; shape: number[] }, layerIds: readonly string[]): Promise<Map<string, LayerTensor>> {
    if (this.state.engine === 'unchecked') return this.checkedRun(input, layerIds);
    if (this.state.engine === 'tfjs') return this.tfjs.run(input, layerIds);
    return this.fromOnnx(await this.onnx.run(input, layerIds));
  }

  /** ONNX tensors in TF.js layout: 4-D maps NCHW in the graph go back to NHWC. */
  private fromOnnx(got: Map<string, LayerTensor>): Map<string, LayerTensor> {
    const out = new Map<string, LayerTensor>();
    for (const [id, t] of got) {
      const tf = this.tfLayers.get(id);
      const onnx = this.onnxLayers.get(id);
      if (this.mapsNchw && tf && onnx && tf.layout === 'NHWC' && onnx.layout === 'NCHW' && t.shape.length === 4) {
        const [n, c, h, w] = t.shape as [number, number, number, number];
        out.set(id, { data: nchwToNhwc(t.data, t.shape), shape: [n, h, w, c] });
      } else {
        out.set(id, t);
      }
    }
    return out;
  }

  private async checkedRun(input: { data: Float32Array; shape: number[] }, layerIds: readonly string[]): Promise<Map<string, LayerTensor>> {
    const n = input.shape[0] ?? 0;
    if (n === 0) return this.tfjs.run(input, layerIds);
    const output = [...this.tfLayers.values()].find((l) => l.isOutput)?.id;
    const ids = [...new Set(output ? [...layerIds, output] : layerIds)];
    let got: Map<string, LayerTensor>;
    let reason: string | null = null;
    try {
      got = this.fromOnnx(await this.onnx.run(input, ids));
      const m = Math.min(n, CHECK_ROWS);
      const per = input.data.length / n;
      const ref = await this.tfjs.run({ data: input.data.subarray(0, m * per), shape: [m, ...input.shape.slice(1)] }, ids);
      let worst = 0;
      for (const id of ids) {
        const a = ref.get(id)!;
        const b = got.get(id)!;
        const rel = relativeDifference(a.data, b.data.subarray(0, a.data.length));
        const tol = id === output ? CHECK_REL_OUTPUT : CHECK_REL_HIDDEN;
        worst = Math.max(worst, id === output ? rel : 0);
        if (!(rel <= tol)) {
          reason = `the converted model disagrees with TF.js at layer \`${id}\` (max relative difference ${rel.toExponential(1)} > ${tol})`;
          break;
        }
      }
      if (reason === null) {
        this.state = { engine: 'onnx', worst };
        const result = new Map<string, LayerTensor>();
        for (const id of layerIds) result.set(id, got.get(id)!);
        return result;
      }
    } catch (e) {
      // Out of memory is the batch's fault, not the conversion's: the caller lowers the batch
      // (pipeline/capture.ts) and the check runs again on the smaller one.
      if (e instanceof UsageError || isAllocationFailure(errorMessage(e))) throw e;
      reason = `the converted model failed on the first batch: ${errorMessage(e).split('\n')[0]}`;
    }
    if (this.strict) throw new RuntimeFailure(`--engine onnx: ${reason}`, 'use --engine tfjs (or auto, which falls back to TF.js)');
    this.fallBack(reason);
    return this.tfjs.run(input, layerIds);
  }

  private fallBack(reason: string): void {
    this.state = { engine: 'tfjs', reason };
    this.notes.push(`runs on TF.js, not onnxruntime: ${reason}`);
    void this.onnx.dispose();
  }

  classifierHead(label?: string): Promise<ClassifierHead> {
    return this.tfjs.classifierHead(label);
  }

  exportableLayersModel(): ReturnType<TfjsRunner['exportableLayersModel']> {
    return this.tfjs.exportableLayersModel();
  }

  async dispose(): Promise<void> {
    await this.onnx.dispose();
    await this.tfjs.dispose();
  }
}

/** A TF.js runner that says why it is not converted (engine auto's fallback at open time). */
export class UnconvertedTfjsRunner implements ModelRunner {
  readonly format: TfjsRunner['format'];
  readonly path: string;
  readonly inputShape: (number | null)[];
  readonly backend: string;
  readonly engine = 'tfjs' as const;
  constructor(
    private readonly tfjs: TfjsRunner,
    private readonly reason: string,
  ) {
    this.format = tfjs.format;
    this.path = tfjs.path;
    this.inputShape = tfjs.inputShape;
    this.backend = `${tfjs.backend} (ONNX conversion not used: ${reason})`;
  }
  warnings(): string[] {
    return [`runs on TF.js, not onnxruntime: ${this.reason}`];
  }
  layers(): LayerInfo[] {
    return this.tfjs.layers();
  }
  run(input: { data: Float32Array; shape: number[] }, layerIds: readonly string[]): Promise<Map<string, LayerTensor>> {
    return this.tfjs.run(input, layerIds);
  }
  classifierHead(label?: string): Promise<ClassifierHead> {
    return this.tfjs.classifierHead(label);
  }
  exportableLayersModel(): ReturnType<TfjsRunner['exportableLayersModel']> {
    return this.tfjs.exportableLayersModel();
  }
  dispose(): Promise<void> {
    return this.tfjs.dispose();
  }
}

/** The TF.js model behind the engine asked for (see the header). */
export async function withEngine(tfjs: TfjsRunner, engine: Engine): Promise<ModelRunner> {
  if (engine === 'tfjs') return tfjs;
  let onnx: OnnxRunner | null = null;
  try {
    const file = await convertedFile(tfjs);
    onnx = await openOnnxModel(file);
    const onnxLayers = mapLayers(tfjs.layers(), onnx);
    return new ConvertedTfjsRunner(tfjs, onnx, onnxLayers, engine === 'onnx');
  } catch (e) {
    await onnx?.dispose();
    if (e instanceof UsageError) {
      await tfjs.dispose();
      throw e;
    }
    const reason = errorMessage(e).split('\n')[0]!.replace(/^cannot export /, 'cannot convert ');
    if (engine === 'onnx') {
      await tfjs.dispose();
      throw new RuntimeFailure(`--engine onnx: model ${tfjs.path} cannot run on onnxruntime: ${reason}`, 'use --engine tfjs (or auto, which falls back to TF.js)');
    }
    return new UnconvertedTfjsRunner(tfjs, reason);
  }
}
