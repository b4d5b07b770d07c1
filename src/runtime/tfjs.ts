/**
 * TF.js model runner: layers models (Keras-style topology) and graph models (converted GraphDefs)
 * behind ModelRunner. Intermediate tensors are reached by building a sub-model whose outputs are
 * the requested layers (layers models) or by naming nodes in `execute` (graph models), so every
 * requested layer comes out of one forward pass.
 */
import path from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { kindAndLayout } from './layer-kind.js';
import { layerNotFound } from './select.js';
import { loadTf, type Tf } from './backend.js';
import {
  GRAPH_POOLING_OPS,
  POOLING_LAYER_CLASSES,
  TRANSFORMER_BLOCK_CLASSES,
  defaultSelection,
  graphNodeIsActivated,
  layerDepths,
  layerIsActivated,
  type SelectionNode,
} from './tfjs-default-layers.js';
import { loadModelFiles } from './tfjs-io.js';
import '../train/layers/register.js';
import type { LayerInfo, LayerTensor, ModelRunner } from './types.js';

type Tensor = tfTypes.Tensor;
type LayersModel = tfTypes.LayersModel;
type GraphModel = tfTypes.GraphModel;
type SymbolicTensor = tfTypes.SymbolicTensor;
type Layer = LayersModel['layers'][number];
type ModelArtifacts = tfTypes.io.ModelArtifacts;

export type TfjsFormat = 'tfjs-layers' | 'tfjs-graph';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

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

function fmtShape(s: readonly (number | null)[]): string {
  return '[' + s.map((d) => (d === null || d < 0 ? 'null' : String(d))).join(',') + ']';
}

function product(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

function firstLine(e: unknown): string {
  return errorMessage(e).split('\n')[0]!.trim();
}

/** Shared by both model kinds: input fitting, id checks, download and disposal. */
export abstract class TfjsRunner implements ModelRunner {
  abstract readonly format: TfjsFormat;
  readonly backend: string;
  protected readonly infos: LayerInfo[];
  private readonly byId: Map<string, LayerInfo>;

  protected constructor(
    protected readonly tf: Tf,
    backend: string,
    readonly path: string,
    readonly inputShape: (number | null)[],
    infos: LayerInfo[],
  ) {
    this.backend = `tfjs ${backend}`;
    this.infos = infos;
    this.byId = new Map(infos.map((l) => [l.id, l]));
  }

  layers(): LayerInfo[] {
    return this.infos.map((l) => ({ ...l, shape: [...l.shape] }));
  }

  /** Requested layers as float32 tensors, in `ids` order; the caller disposes them. */
  protected abstract execute(x: Tensor, ids: readonly string[]): Promise<Tensor[]>;

  /** The shape to reshape a flat batch to: the model's own where it is fully known. */
  protected fitInput(input: { data: Float32Array; shape: number[] }): number[] {
    const shape = input.shape;
    const bad = (): UsageError =>
      new UsageError(`input shape ${fmtShape(shape)} does not fit model input ${fmtShape(this.inputShape)}`);
    if (shape.length < 1 || shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad();
    if (product(shape) !== input.data.length) {
      throw new UsageError(`input has ${input.data.length} values but its shape ${fmtShape(shape)} needs ${product(shape)}`);
    }
    const n = shape[0]!;
    const modelDims = this.inputShape.slice(1);
    if (modelDims.every((d): d is number => d !== null)) {
      if (product(shape.slice(1)) !== product(modelDims)) throw bad();
      return [n, ...modelDims];
    }
    // Free dimensions: the caller's shape decides them, so it must agree on rank and fixed sizes.
    if (shape.length !== this.inputShape.length || modelDims.some((d, i) => d !== null && d !== shape[i + 1])) throw bad();
    return [...shape];
  }

  async run(input: { data: Float32Array; shape: number[] }, layerIds: readonly string[]): Promise<Map<string, LayerTensor>> {
    const ids = [...new Set(layerIds)];
    const known = this.infos.map((l) => l.id);
    for (const id of ids) {
      if (!this.byId.has(id)) throw layerNotFound(id, known, this.path);
    }
    const target = this.fitInput(input);
    const result = new Map<string, LayerTensor>();
    if (ids.length === 0) return result;
    if (target[0] === 0) {
      for (const id of ids) result.set(id, { data: new Float32Array(0), shape: [0, ...this.byId.get(id)!.shape.slice(1).map((d) => d ?? 0)] });
      return result;
    }
    const tf = this.tf;
    const x = tf.tensor(input.data, target, 'float32');
    let outs: Tensor[] = [];
    try {
      outs = await this.execute(x, ids);
      const datas = await Promise.all(outs.map((t) => t.data()));
      ids.forEach((id, k) => {
        // A copy: on some backends data() hands out the backend's own storage.
        result.set(id, { data: new Float32Array(datas[k] as Float32Array), shape: [...outs[k]!.shape] });
      });
    } catch (e) {
      if (e instanceof UsageError || e instanceof RuntimeFailure) throw e;
      throw new RuntimeFailure(`running ${path.basename(this.path)} failed: ${firstLine(e)}`);
    } finally {
      x.dispose();
      tf.dispose(outs);
    }
    return result;
  }

  abstract dispose(): Promise<void>;
}

// ───────────────────────────── layers models ─────────────────────────────

interface LayerEntry {
  info: LayerInfo;
  tensor: SymbolicTensor;
}

function layerOutputs(layer: Layer): SymbolicTensor[] {
  let out: SymbolicTensor | SymbolicTensor[];
  try {
    out = layer.output;
  } catch {
    // Shared layers have several inbound nodes; the first is the one this model was built from.
    out = layer.inboundNodes[0]?.outputTensors ?? [];
  }
  return Array.isArray(out) ? out : [out];
}

function tensorKey(t: SymbolicTensor): string {
  return `${t.sourceLayer.name}#${t.outputTensorIndex ?? 0}`;
}

export class TfjsLayersRunner extends TfjsRunner {
  readonly format = 'tfjs-layers' as const;
  private readonly entries: Map<string, LayerEntry>;
  /** Sub-models per requested id set; they share the layers (and weights) of the main model. */
  private readonly submodels = new Map<string, LayersModel>();

  private constructor(tf: Tf, backend: string, file: string, readonly layersModel: LayersModel, entries: LayerEntry[]) {
    const inShape = [...layersModel.inputs[0]!.shape];
    inShape[0] = null;
    super(tf, backend, file, inShape, entries.map((e) => e.info));
    this.entries = new Map(entries.map((e) => [e.info.id, e]));
  }

  static async create(tf: Tf, backend: string, file: string, artifacts: ModelArtifacts): Promise<TfjsLayersRunner> {
    let model: LayersModel;
    try {
      model = await tf.loadLayersModel({ load: async () => artifacts });
    } catch (e) {
      // TF.js follows "Unknown layer: X." with a list of generic reasons; the name is the news.
      const unknown = /^Unknown layer: ([^.\s]+)/.exec(firstLine(e));
      if (unknown) {
        throw new RuntimeFailure(
          `cannot load TF.js layers model \`${file}\`: it uses layer class \`${unknown[1]}\`, which TF.js does not know`,
          'a custom layer of the training code; convert the model without it, or export it to ONNX and audit that',
        );
      }
      throw new RuntimeFailure(`cannot load TF.js layers model \`${file}\`: ${firstLine(e)}`);
    }
    if (model.inputs.length !== 1) {
      model.dispose();
      throw new RuntimeFailure(`\`${file}\` has ${model.inputs.length} inputs; layerprobe runs single-input models`);
    }
    return new TfjsLayersRunner(tf, backend, file, model, TfjsLayersRunner.describe(model));
  }

  private static describe(model: LayersModel): LayerEntry[] {
    const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
    const outputKeys = new Set(model.outputs.map(tensorKey));
    const raw: { layer: Layer; id: string; tensor: SymbolicTensor }[] = [];
    for (const layer of layers) {
      const outs = layerOutputs(layer);
      outs.forEach((t, k) => raw.push({ layer, id: outs.length === 1 ? layer.name : `${layer.name}:${k}`, tensor: t }));
    }
    // Converted LeNets list every layer as an output; the classifier is the last one, the rest are hidden.
    let outputIdx = -1;
    raw.forEach((r, i) => {
      if (outputKeys.has(tensorKey(r.tensor))) outputIdx = i;
    });

    const layout4 = new Map<string, 'NHWC' | 'NCHW'>();
    const inboundOf = (layer: Layer): string[] => (layer.inboundNodes[0]?.inboundLayers ?? []).map((l) => l.name);
    const entries: LayerEntry[] = raw.map((r, index) => {
      const config = r.layer.getConfig() as Record<string, unknown>;
      const shape: (number | null)[] = [...r.tensor.shape];
      shape[0] = null;
      let l4: 'NHWC' | 'NCHW' = 'NHWC';
      if (config.data_format === 'channels_first') l4 = 'NCHW';
      else if (config.data_format === undefined) l4 = layout4.get(inboundOf(r.layer)[0] ?? '') ?? 'NHWC';
      if (shape.length === 4) layout4.set(r.layer.name, l4);
      return {
        tensor: r.tensor,
        info: {
          id: r.id,
          op: r.layer.getClassName(),
          shape,
          ...kindAndLayout(shape, l4),
          index,
          defaultSelected: false,
          isOutput: index === outputIdx,
        },
      };
    });

    const listed = new Set(raw.map((r) => r.layer.name));
    const nodes: SelectionNode[] = raw
      .filter((r) => r.id === r.layer.name)
      .map((r) => {
        const cls = r.layer.getClassName();
        return {
          id: r.id,
          op: cls,
          rank: r.tensor.shape.length,
          inputs: inboundOf(r.layer).filter((n) => listed.has(n)),
          activated: layerIsActivated(cls, r.layer.getConfig() as Record<string, unknown>),
          pool: POOLING_LAYER_CLASSES.has(cls),
          block: TRANSFORMER_BLOCK_CLASSES.has(cls),
          isOutput: raw[outputIdx]?.id === r.id,
        };
      });
    const selected = defaultSelection(nodes);
    const depths = layerDepths(nodes);
    for (const e of entries) [e.info.defaultSelected, e.info.depth] = [selected.has(e.info.id), depths.get(e.info.id)];
    return entries;
  }

  private submodel(ids: readonly string[]): LayersModel {
    const key = JSON.stringify(ids);
    let sub = this.submodels.get(key);
    if (!sub) {
      sub = this.tf.model({ inputs: this.layersModel.inputs, outputs: ids.map((id) => this.entries.get(id)!.tensor) });
      // Sub-models own no tensors, so dropping the oldest only frees a little JS.
      if (this.submodels.size >= 32) this.submodels.delete(this.submodels.keys().next().value!);
      this.submodels.set(key, sub);
    }
    return sub;
  }

  protected async execute(x: Tensor, ids: readonly string[]): Promise<Tensor[]> {
    const sub = this.submodel(ids);
    const tf = this.tf;
    return tf.tidy(() => {
      const out = sub.predict(x, { batchSize: x.shape[0] });
      return (Array.isArray(out) ? out : [out]).map((t) => (t.dtype === 'float32' ? t : t.cast('float32')));
    });
  }

  async dispose(): Promise<void> {
    this.submodels.clear();
    this.layersModel.dispose();
  }
}

// ───────────────────────────── graph models ─────────────────────────────

interface GraphNodeDef {
  name: string;
  op: string;
  input: string[];
  attr: Record<string, unknown>;
}

const NON_FEATURE_OPS: ReadonlySet<string> = new Set(['Const', 'Placeholder', 'PlaceholderWithDefault', 'NoOp']);

/** Proto3-JSON bytes come as base64 strings or, from older converters, as arrays of char codes. */
function decodeBytes(v: unknown): string | null {
  if (typeof v === 'string') return Buffer.from(v, 'base64').toString('utf8');
  if (Array.isArray(v) && v.every((c) => typeof c === 'number')) return String.fromCharCode(...(v as number[]));
  return null;
}

function attrString(node: GraphNodeDef, name: string): string | null {
  const a = node.attr[name];
  return isRecord(a) ? decodeBytes(a.s) : null;
}

function attrStringList(node: GraphNodeDef, name: string): string[] {
  const a = node.attr[name];
  if (!isRecord(a) || !isRecord(a.list) || !Array.isArray(a.list.s)) return [];
  return a.list.s.map(decodeBytes).filter((s): s is string => s !== null);
}

/** Node name of an input reference: `^ctrl`, `name:1` and `name` all point at node `name`. */
function inputNode(ref: string): string {
  const s = ref.startsWith('^') ? ref.slice(1) : ref;
  const colon = s.lastIndexOf(':');
  return colon > 0 && /^\d+$/.test(s.slice(colon + 1)) ? s.slice(0, colon) : s;
}

function parseGraphNodes(file: string, topo: Record<string, unknown>): GraphNodeDef[] {
  const raw = topo.node;
  if (!Array.isArray(raw)) throw new RuntimeFailure(`\`${file}\`: graph model topology has no node list`);
  return raw.map((n, i) => {
    if (!isRecord(n) || typeof n.name !== 'string' || typeof n.op !== 'string') {
      throw new RuntimeFailure(`\`${file}\`: graph node #${i} has no name/op`);
    }
    const input = Array.isArray(n.input) ? n.input.filter((s): s is string => typeof s === 'string') : [];
    return { name: n.name, op: n.op, input, attr: isRecord(n.attr) ? n.attr : {} };
  });
}

/** Kahn's algorithm, ties broken by file order, so converter order survives where it is already valid. */
function topoSort(nodes: GraphNodeDef[]): GraphNodeDef[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const indeg = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const n of nodes) {
    const deps = new Set(n.input.map(inputNode).filter((d) => byName.has(d)));
    indeg.set(n.name, deps.size);
    for (const d of deps) children.set(d, [...(children.get(d) ?? []), n.name]);
  }
  const order = new Map(nodes.map((n, i) => [n.name, i]));
  const ready = nodes.filter((n) => indeg.get(n.name) === 0).map((n) => n.name);
  const out: GraphNodeDef[] = [];
  while (ready.length) {
    ready.sort((a, b) => order.get(a)! - order.get(b)!);
    const name = ready.shift()!;
    out.push(byName.get(name)!);
    for (const c of children.get(name) ?? []) {
      const d = indeg.get(c)! - 1;
      indeg.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  // Cycles only come with TF control flow (NextIteration); keep those nodes in file order at the end.
  if (out.length < nodes.length) {
    const seen = new Set(out.map((n) => n.name));
    for (const n of nodes) if (!seen.has(n.name)) out.push(n);
  }
  return out;
}

export class TfjsGraphRunner extends TfjsRunner {
  readonly format = 'tfjs-graph' as const;

  private constructor(
    tf: Tf,
    backend: string,
    file: string,
    inputShape: (number | null)[],
    infos: LayerInfo[],
    readonly graphModel: GraphModel,
    private readonly inputName: string,
    private readonly inputDtype: tfTypes.DataType,
    private readonly useAsync: boolean,
  ) {
    super(tf, backend, file, inputShape, infos);
  }

  static async create(tf: Tf, backend: string, file: string, artifacts: ModelArtifacts): Promise<TfjsGraphRunner> {
    const nodes = topoSort(parseGraphNodes(file, artifacts.modelTopology as Record<string, unknown>));
    let model: GraphModel;
    try {
      model = await tf.loadGraphModel({ load: async () => artifacts });
    } catch (e) {
      throw new RuntimeFailure(`cannot load TF.js graph model \`${file}\`: ${firstLine(e)}`);
    }
    try {
      return await TfjsGraphRunner.describe(tf, backend, file, model, nodes);
    } catch (e) {
      model.dispose();
      if (e instanceof RuntimeFailure) throw e;
      throw new RuntimeFailure(`cannot run TF.js graph model \`${file}\`: ${firstLine(e)}`);
    }
  }

  private static async describe(tf: Tf, backend: string, file: string, model: GraphModel, nodes: GraphNodeDef[]): Promise<TfjsGraphRunner> {
    if (model.inputs.length !== 1) {
      throw new RuntimeFailure(`\`${file}\` has ${model.inputs.length} inputs; layerprobe runs single-input models`);
    }
    const input = model.inputs[0]!;
    if (!input.shape) throw new RuntimeFailure(`\`${file}\`: input \`${input.name}\` has no declared shape`);
    const inputShape: (number | null)[] = input.shape.map((d, i) => (i === 0 || d < 0 ? null : d));
    const inputNodeName = inputNode(input.name);

    // Only tensors computed from the input are per-sample features; weights and folded constants are not.
    const dependsOnInput = new Set<string>([inputNodeName]);
    for (const n of nodes) if (n.input.some((r) => !r.startsWith('^') && dependsOnInput.has(inputNode(r)))) dependsOnInput.add(n.name);
    const candidates = nodes.filter((n) => dependsOnInput.has(n.name) && !NON_FEATURE_OPS.has(n.op));

    // Two dry runs (batch 1 and 2, free sizes 64 and 96) tell per-sample features from batch-independent
    // tensors and fixed dimensions from free ones.
    const names = candidates.map((n) => n.name);
    let useAsync = false;
    const probe = async (batch: number, free: number): Promise<Map<string, { shape: number[]; dtype: string }>> => {
      const shape = inputShape.map((d, i) => (i === 0 ? batch : (d ?? free)));
      const x = tf.zeros(shape, input.dtype);
      let outs: Tensor[] = [];
      try {
        const feed = { [input.name]: x };
        if (!useAsync) {
          try {
            outs = tf.tidy(() => {
              const o = model.execute(feed, names);
              return Array.isArray(o) ? o : [o];
            });
          } catch (e) {
            if (!/executeAsync/.test(errorMessage(e))) throw e;
            useAsync = true;
          }
        }
        if (useAsync) {
          const o = await model.executeAsync(feed, names);
          outs = Array.isArray(o) ? o : [o];
        }
        return new Map(names.map((nm, k) => [nm, { shape: outs[k]!.shape, dtype: outs[k]!.dtype }]));
      } finally {
        x.dispose();
        tf.dispose(outs);
      }
    };
    const a = await probe(1, 64);
    const b = await probe(2, 96);

    const outputNames = new Set(model.outputs.map((o) => inputNode(o.name)));
    const kept = candidates.filter((n) => {
      const sa = a.get(n.name)!;
      const sb = b.get(n.name)!;
      return sa.dtype === 'float32' && sa.shape.length >= 1 && sa.shape.length === sb.shape.length && sa.shape[0] === 1 && sb.shape[0] === 2;
    });
    let outputIdx = -1;
    kept.forEach((n, i) => {
      if (outputNames.has(n.name)) outputIdx = i;
    });

    const layout4 = new Map<string, 'NHWC' | 'NCHW'>();
    const infos: LayerInfo[] = kept.map((n, index) => {
      const sa = a.get(n.name)!.shape;
      const sb = b.get(n.name)!.shape;
      const shape = sa.map((d, i) => (i === 0 || d !== sb[i] ? null : d));
      const df = attrString(n, 'data_format');
      let l4: 'NHWC' | 'NCHW' = 'NHWC';
      if (df === 'NCHW') l4 = 'NCHW';
      else if (df === null) l4 = layout4.get(inputNode(n.input[0] ?? '')) ?? 'NHWC';
      if (shape.length === 4) layout4.set(n.name, l4);
      return { id: n.name, op: n.op, shape, ...kindAndLayout(shape, l4), index, defaultSelected: false, isOutput: index === outputIdx };
    });

    const keptNames = new Set(kept.map((n) => n.name));
    const graphNodes = kept.map((n, i) => ({
        id: n.name,
        op: n.op,
        rank: a.get(n.name)!.shape.length,
        // Data inputs only: weights and shape tensors are not part of the feature path.
        inputs: n.input.filter((r) => !r.startsWith('^')).map(inputNode).filter((d) => keptNames.has(d)),
        activated: graphNodeIsActivated(n.op, attrStringList(n, 'fused_ops')),
        pool: GRAPH_POOLING_OPS.has(n.op),
        block: false,
        isOutput: i === outputIdx,
      }));
    const selected = defaultSelection(graphNodes);
    const depths = layerDepths(graphNodes);
    for (const l of infos) [l.defaultSelected, l.depth] = [selected.has(l.id), depths.get(l.id)];
    return new TfjsGraphRunner(tf, backend, file, inputShape, infos, model, input.name, input.dtype, useAsync);
  }

  protected async execute(x: Tensor, ids: readonly string[]): Promise<Tensor[]> {
    const tf = this.tf;
    const xin = this.inputDtype === 'float32' ? x : tf.cast(x, this.inputDtype);
    try {
      const feed = { [this.inputName]: xin };
      if (!this.useAsync) {
        return tf.tidy(() => {
          const o = this.graphModel.execute(feed, [...ids]);
          return (Array.isArray(o) ? o : [o]).map((t) => (t.dtype === 'float32' ? t : t.cast('float32')));
        });
      }
      const o = await this.graphModel.executeAsync(feed, [...ids]);
      const outs = Array.isArray(o) ? o : [o];
      const cast = outs.map((t) => (t.dtype === 'float32' ? t : tf.cast(t, 'float32')));
      tf.dispose(outs.filter((t, k) => t !== cast[k]));
      return cast;
    } finally {
      if (xin !== x) xin.dispose();
    }
  }

  async dispose(): Promise<void> {
    this.graphModel.dispose();
  }
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
  return format === 'tfjs-layers'
    ? TfjsLayersRunner.create(tf, backend, file, artifacts)
    : TfjsGraphRunner.create(tf, backend, file, artifacts);
}
