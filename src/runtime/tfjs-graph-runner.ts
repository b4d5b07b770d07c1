/**
 * TF.js graph models (converted GraphDefs) behind ModelRunner: intermediate tensors are reached by
 * naming nodes in `execute`, so every requested layer comes out of one forward pass.
 */
import type * as tfTypes from './tf-types.js';
import { RuntimeFailure, errorMessage } from '../errors.js';
import type { Tf } from './backend.js';
import {
  GRAPH_POOLING_OPS,
  defaultSelection,
  layerDepths,
  graphNodeIsActivated,
} from './tfjs-default-layers.js';
import { graphModelHead } from './classifier-head.js';
import type { ClassifierHead, LayerInfo } from './types.js';
import { TfjsRunner, firstLine, isRecord } from './tfjs-runner.js';
import { kindAndLayout } from './layer-kind.js';
import { boundedAsync } from '../util/watchdog.js';
import type { GraphSource } from './tfjs-onnx/graph-convert.js';

type Tensor = tfTypes.Tensor;
type GraphModel = tfTypes.GraphModel;
type ModelArtifacts = tfTypes.io.ModelArtifacts;

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
    private readonly nodes: GraphNodeDef[],
  ) {
    super(tf, backend, file, inputShape, infos);
  }

  /** What the ONNX conversion of this graph needs (runtime/tfjs-onnx/graph-convert.ts). */
  conversionSource(): GraphSource {
    return { nodes: this.nodes, inputNode: inputNode(this.inputName), inputShape: this.inputShape, layers: this.infos, weights: this.graphModel.weights };
  }

  static async create(tf: Tf, backend: string, file: string, artifacts: ModelArtifacts): Promise<TfjsGraphRunner> {
    const nodes = topoSort(parseGraphNodes(file, artifacts.modelTopology as Record<string, unknown>));
    let model: GraphModel;
    try {
      model = await boundedAsync(`loading TF.js model \`${file}\``, () => tf.loadGraphModel({ load: async () => artifacts }));
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
    return new TfjsGraphRunner(tf, backend, file, inputShape, infos, model, input.name, input.dtype, useAsync, nodes);
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

  async classifierHead(label = this.path): Promise<ClassifierHead> {
    return graphModelHead(label);
  }

  exportableLayersModel(): null {
    return null;
  }

  async dispose(): Promise<void> {
    this.graphModel.dispose();
  }
}

