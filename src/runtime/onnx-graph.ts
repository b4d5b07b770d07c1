/**
 * ONNX graph surgery with onnx-proto: decode a ModelProto, find the tensors worth probing,
 * expose them as graph outputs (onnxruntime only returns graph outputs), free a fixed batch
 * dimension, and pick the default layers. Everything here works on the protobuf objects only;
 * onnx.ts owns the sessions.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { chooseDefaultLayers, graphDepths, type DagNode } from './default-layers.js';

const { onnx } = onnxProto;

export type ModelProto = OnnxTypes.ModelProto;
export type GraphProto = OnnxTypes.GraphProto;
export type ValueInfoProto = OnnxTypes.IValueInfoProto;

/** A dimension as declared: a size, a symbolic name, or unknown. */
export type Dim = number | string | null;

/** TensorProto.DataType values used here. */
export const ELEM_FLOAT = 1;
export const ELEM_INT64 = 7;

/** int64 fields decode as Long when the `long` package is present, as number otherwise. */
export function toNum(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export function valueDims(vi: ValueInfoProto): Dim[] | null {
  const shape = vi.type?.tensorType?.shape;
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => {
    if (d.dimParam) return d.dimParam;
    const v = toNum(d.dimValue);
    // dim_value 0 is what exporters write for "unknown" as often as they write nothing.
    return d.dimValue !== null && d.dimValue !== undefined && v > 0 ? v : null;
  });
}

export function valueElemType(vi: ValueInfoProto): number {
  return vi.type?.tensorType?.elemType ?? 0;
}

export interface GraphNode {
  index: number;
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
}

export interface GraphAnalysis {
  inputName: string;
  /** Declared input dims; null when the input carries no shape at all. */
  inputDims: Dim[] | null;
  inputElemType: number;
  /** Original graph outputs, in declaration order. */
  outputNames: string[];
  nodes: GraphNode[];
  /** Tensor name → index of the node producing it. */
  producer: Map<string, number>;
  /** Tensor name → indices of the nodes reading it. */
  consumers: Map<string, number[]>;
  /** Initializers and Constant outputs: weights, never activations. */
  constants: Set<string>;
  /**
   * Node outputs that depend on the graph input, in graph order. Weight preprocessing
   * (Transpose of an initializer, DequantizeLinear of weights) and Constant nodes drop out here;
   * integer shape plumbing fed by Shape(x) stays and is dropped later by dtype.
   */
  candidates: string[];
}

/**
 * Why a model cannot be analysed; onnx.ts turns this into a RuntimeFailure. `unsupported`
 * separates well-formed models layerprobe cannot handle from malformed ones.
 */
export class GraphError extends Error {
  constructor(
    message: string,
    readonly unsupported = false,
  ) {
    super(message);
  }
}

/** Ops that carry learned weights: a tensor is a hidden representation only after one of them. */
const PARAM_OPS = new Set([
  'Conv', 'ConvTranspose', 'ConvInteger', 'QLinearConv', 'Gemm', 'MatMul', 'MatMulInteger',
  'QLinearMatMul', 'Einsum', 'LSTM', 'GRU', 'RNN', 'Attention', 'MultiHeadAttention',
]);

const ACTIVATION_OPS = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Sigmoid', 'Tanh', 'Gelu', 'FastGelu',
  'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish', 'Mish', 'ThresholdedRelu',
  // Clip is how ReLU6 (MobileNet) is exported.
  'Clip',
]);

const POOL_OPS = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool']);

export function analyzeGraph(model: ModelProto): GraphAnalysis {
  const g = model.graph;
  if (!g) throw new GraphError('it has no graph');
  if (!g.node || g.node.length === 0) throw new GraphError('its graph has no nodes');
  const initNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  // Before IR 4 initializers were also listed as graph inputs.
  const inputs = (g.input ?? []).filter((vi) => !initNames.has(vi.name ?? ''));
  if (inputs.length === 0) throw new GraphError('its graph has no inputs');
  if (inputs.length > 1) {
    throw new GraphError(`it has ${inputs.length} inputs (${inputs.map((v) => v.name).join(', ')}); layerprobe supports single-input models`, true);
  }
  const input = inputs[0]!;
  const inputName = input.name ?? '';
  const outputNames = (g.output ?? []).map((vi) => vi.name ?? '').filter((n) => n !== '');
  if (outputNames.length === 0) throw new GraphError('its graph has no outputs');

  const nodes: GraphNode[] = g.node.map((n, index) => ({
    index,
    op: n.opType ?? '',
    name: n.name ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
  }));
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  const constants = new Set(initNames);
  const dependent = new Set<string>([inputName]);
  const candidates: string[] = [];
  for (const n of nodes) {
    for (const i of n.inputs) {
      if (!i) continue;
      const list = consumers.get(i);
      if (list) {
        if (list[list.length - 1] !== n.index) list.push(n.index);
      } else consumers.set(i, [n.index]);
    }
    const isDependent = n.inputs.some((i) => dependent.has(i));
    for (const o of n.outputs) {
      if (!o) continue;
      producer.set(o, n.index);
      if (n.op === 'Constant') constants.add(o);
      if (isDependent && n.op !== 'Constant' && !dependent.has(o) && !initNames.has(o)) {
        dependent.add(o);
        candidates.push(o);
      }
    }
  }
  return {
    inputName,
    inputDims: valueDims(input),
    inputElemType: valueElemType(input),
    outputNames,
    nodes,
    producer,
    consumers,
    constants,
    candidates,
  };
}

export function hasExternalData(model: ModelProto): boolean {
  // TensorProto.DataLocation.EXTERNAL = 1
  return (model.graph?.initializer ?? []).some((t) => t.dataLocation === 1);
}

/**
 * Append tensors to graph.output by name only. onnxruntime 1.30 accepts a ValueInfoProto
 * without a type and infers it (checked on IR 4 and IR 7 models), so int64 shape plumbing can
 * be exposed too and filtered by the dtype the dry run reports.
 */
export function exposeTensors(model: ModelProto, names: readonly string[]): void {
  const g = model.graph!;
  const out = (g.output ??= []);
  const present = new Set(out.map((o) => o.name));
  for (const name of names) {
    if (present.has(name)) continue;
    present.add(name);
    out.push(onnx.ValueInfoProto.create({ name }));
  }
}

function uniqueParam(model: ModelProto, wanted: string): string {
  const used = new Set<string>();
  const g = model.graph!;
  for (const vi of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) {
    for (const d of vi.type?.tensorType?.shape?.dim ?? []) if (d.dimParam) used.add(d.dimParam);
  }
  let name = wanted;
  for (let k = 2; used.has(name); k++) name = `${wanted}${k}`;
  return name;
}

function symbolicDim(param: string): OnnxTypes.TensorShapeProto.Dimension {
  return onnx.TensorShapeProto.Dimension.create({ dimParam: param });
}

/**
 * Replace the input's fixed batch size by a symbolic dim. Declared output shapes are freed the
 * same way; value_info shapes are only hints that onnxruntime re-infers, and a stale fixed batch
 * there makes it reject the larger batch at run time, so they are dropped (types are kept).
 * Returns the symbolic name used.
 */
export function freeBatchDim(model: ModelProto, inputName: string, fixed: number, wanted = 'N'): string {
  const g = model.graph!;
  const param = uniqueParam(model, wanted);
  const input = (g.input ?? []).find((vi) => vi.name === inputName);
  const inDims = input?.type?.tensorType?.shape?.dim;
  if (!inDims || inDims.length === 0) throw new GraphError(`input ${inputName} has no batch dimension`);
  inDims[0] = symbolicDim(param);
  for (const vi of g.output ?? []) {
    const dims = vi.type?.tensorType?.shape?.dim;
    if (dims && dims.length > 0 && !dims[0]!.dimParam && toNum(dims[0]!.dimValue) === fixed) dims[0] = symbolicDim(param);
  }
  for (const vi of g.valueInfo ?? []) {
    const tt = vi.type?.tensorType;
    if (tt?.shape) tt.shape = null;
  }
  return param;
}

/**
 * The sequential rule (default-layers.ts): the output of each hidden layer after its nonlinearity. Activations and
 * pools qualify; of an activation→pool (or pool→activation) pair only the later one is kept so
 * that one conv block gives one layer; erf/tanh GELU and x·sigmoid(x) subgraphs count as one
 * activation ending at their last Mul. Tensors not yet past any weighted op (input
 * normalisation) and the model's outputs never qualify.
 */
function sequentialSelection(a: GraphAnalysis, layerIds: ReadonlySet<string>): Set<string> {
  const outputs = new Set(a.outputNames);
  const nodeOf = (t: string): GraphNode | undefined => {
    const i = a.producer.get(t);
    return i === undefined ? undefined : a.nodes[i];
  };
  const soleConsumer = (t: string): GraphNode | undefined => {
    const c = a.consumers.get(t);
    return c && c.length === 1 && !outputs.has(t) ? a.nodes[c[0]!] : undefined;
  };
  const isConst = (t: string): boolean => a.constants.has(t);

  // Which tensors have a weighted op upstream.
  const afterParam = new Set<string>();
  for (const n of a.nodes) {
    if (PARAM_OPS.has(n.op) || n.inputs.some((i) => afterParam.has(i))) for (const o of n.outputs) if (o) afterParam.add(o);
  }

  const role = new Map<string, 'act' | 'pool'>();
  const notAct = new Set<string>();
  for (const n of a.nodes) {
    const out = n.outputs[0];
    if (!out) continue;
    if (POOL_OPS.has(n.op)) role.set(out, 'pool');
    else if (ACTIVATION_OPS.has(n.op)) role.set(out, 'act');
    if (n.op === 'Erf' || n.op === 'Tanh') {
      // x·0.5·(1 + erf(x/√2)) or the tanh approximation: Erf|Tanh → Add(const) → Mul [→ Mul(const)]
      const add = soleConsumer(out);
      if (add?.op !== 'Add' || !add.inputs.some(isConst)) continue;
      const m1 = soleConsumer(add.outputs[0] ?? '');
      if (m1?.op !== 'Mul') continue;
      const m2 = soleConsumer(m1.outputs[0] ?? '');
      const end = m2?.op === 'Mul' && m2.inputs.some(isConst) ? m2 : m1;
      notAct.add(out);
      if (end.outputs[0]) role.set(end.outputs[0], 'act');
    }
    if (n.op === 'Sigmoid' || n.op === 'HardSigmoid') {
      // SiLU / hard-swish written out: x · σ(x)
      const m = soleConsumer(out);
      if (m?.op === 'Mul' && n.inputs[0] && m.inputs.includes(n.inputs[0]) && m.outputs[0]) {
        notAct.add(out);
        role.set(m.outputs[0], 'act');
      }
    }
  }
  for (const t of notAct) role.delete(t);

  const eligible = (t: string): boolean => role.has(t) && layerIds.has(t) && afterParam.has(t) && !outputs.has(t);
  const selected = new Set<string>();
  for (const t of a.candidates) {
    if (!eligible(t)) continue;
    const next = soleConsumer(t);
    const nextOut = next?.outputs[0];
    if (next && nextOut && nodeOf(nextOut) === next && eligible(nextOut) && role.get(nextOut) !== role.get(t)) continue;
    selected.add(t);
  }
  return selected;
}

/** Ops that only rearrange a tensor's values (the head-equivalence test of the default rule). */
const RESHAPE_OPS = new Set(['Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'Cast']);

/**
 * Ops a walk from the model output back to the classifier head passes through: normalising
 * (softmax), reshaping, and element-wise nonlinearities after the logits (a ReLU on the class
 * scores still leaves the linear layer before it as the head).
 */
export const HEAD_PASS_OPS: ReadonlySet<string> = new Set([
  'Softmax', 'LogSoftmax', 'Identity', 'Dropout', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Cast',
  'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Sigmoid', 'Tanh', 'HardSigmoid', 'Softplus', 'Clip',
]);

/**
 * The tensor the classifier head reads: walk back from the first output through HEAD_PASS_OPS to a
 * Gemm, MatMul or MatMul + constant Add whose weights are constants; null when there is none.
 */
export function headInputTensor(a: GraphAnalysis): string | null {
  const nodeOf = (t: string): GraphNode | undefined => {
    const i = a.producer.get(t);
    return i === undefined ? undefined : a.nodes[i];
  };
  let node = nodeOf(a.outputNames[0] ?? '');
  for (let guard = 0; node && HEAD_PASS_OPS.has(node.op) && guard < a.nodes.length; guard++) node = nodeOf(node.inputs[0] ?? '');
  if (node?.op === 'Add') {
    const [x, y] = node.inputs;
    const mm = [x, y].map((t) => (t ? nodeOf(t) : undefined)).find((p, k) => p?.op === 'MatMul' && a.constants.has([y, x][k] ?? ''));
    node = mm;
  }
  if (!node || (node.op !== 'Gemm' && node.op !== 'MatMul') || !a.constants.has(node.inputs[1] ?? '')) return null;
  return node.inputs[0] ?? null;
}

/** Shape-keeping ops of one feature input (the second operand of Add/Mul/… is then a constant). */
const ELEMENTWISE_OPS = new Set([
  ...ACTIVATION_OPS, 'BatchNormalization', 'Add', 'Sub', 'Mul', 'Div', 'Dropout', 'Identity', 'Cast', 'Neg', 'Erf', 'Sqrt', 'Pow',
]);
const NORM_OPS = new Set(['LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'LpNormalization', 'SimplifiedLayerNormalization']);

/** Ops that join parallel feature paths (residual adds, Inception-style concatenations). */
const MERGE_OPS = new Set(['Add', 'Sum', 'Concat', 'Sub', 'Max', 'Mean']);

/** Ops whose output is a tensor's shape, not its values: the edge through them carries no features. */
const SHAPE_OPS = new Set(['Shape', 'Size']);

/**
 * One DagNode per input-dependent tensor, with its feature inputs. Tensors that are not layers
 * (a batch not first, as in a ViT's stacked q/k/v) stay in the graph so paths run through them;
 * shape plumbing hangs off Shape/Size and so never reaches the input.
 */
function dagNodes(a: GraphAnalysis, layerIds: ReadonlySet<string>, declared: ReadonlySet<string> | null): DagNode[] {
  const tensors = new Set(a.candidates);
  const out: DagNode[] = [];
  for (const n of a.nodes) {
    const inputs = SHAPE_OPS.has(n.op) ? [] : n.inputs.filter((i) => i !== '' && (tensors.has(i) || i === a.inputName));
    const feature = new Set(inputs).size;
    for (const o of n.outputs) {
      if (!o || !tensors.has(o)) continue;
      const attention = (n.op === 'MatMul' || n.op === 'Einsum') && feature >= 2;
      out.push({
        id: o,
        inputs,
        weighted: PARAM_OPS.has(n.op) && !attention,
        attention,
        merge: MERGE_OPS.has(n.op),
        reshape: RESHAPE_OPS.has(n.op),
        elementwise: ELEMENTWISE_OPS.has(n.op) && feature === 1,
        norm: NORM_OPS.has(n.op),
        layer: layerIds.has(o),
        block: declared?.has(o) ?? false,
      });
    }
  }
  return out;
}

/**
 * The default layers (rule in default-layers.ts) among the layers, given with their per-sample
 * shapes (batch dim dropped). `declared` is an exporter's own list of block
 * outputs (`layerprobe.default_layers`); they are always kept.
 */
export function defaultSelection(
  a: GraphAnalysis,
  layerShapes: ReadonlyMap<string, readonly number[]>,
  declared: ReadonlySet<string> | null = null,
): Set<string> {
  const layerIds = new Set(layerShapes.keys());
  const sequential = sequentialSelection(a, layerIds);
  if (declared) for (const id of declared) sequential.add(id);
  const opOf = (t: string): string => a.nodes[a.producer.get(t) ?? -1]?.op ?? '';
  const headStack = new Set([...sequential].filter((t) => POOL_OPS.has(opOf(t)) || (layerShapes.get(t)?.length ?? 9) <= 1));
  const head = headInputTensor(a);
  return chooseDefaultLayers(dagNodes(a, layerIds, declared), {
    input: a.inputName,
    output: a.outputNames[0] ?? '',
    headInput: head !== null && layerIds.has(head) ? head : null,
    sequential,
    headStack,
  }).selected;
}

/** Longest-path depth of each layer in weighted ops (parallel branches share a depth). */
export function layerDepths(a: GraphAnalysis, layerIds: ReadonlySet<string>): Map<string, number> {
  const depths = graphDepths(dagNodes(a, layerIds, null), a.inputName);
  for (const id of depths.keys()) if (!layerIds.has(id)) depths.delete(id);
  return depths;
}
