/**
 * TF.js graph model (a converted TensorFlow GraphDef) → ONNX (opset 17), for the onnx engine
 * (engine.ts). Every tensor keeps TensorFlow's layout (NHWC): convolutions and pools are wrapped
 * in Transposes to and from ONNX's NCHW, which onnxruntime cancels between neighbours. Each node's
 * output is named after the node, so the graph runner's layer ids carry over unchanged.
 *
 * Only the nodes the float layers need are converted, walking back from them; a Reshape whose
 * target shape is computed at run time (Shape → StridedSlice → Pack) takes the per-sample shape
 * the graph runner measured instead. Anything else is refused naming the node and its op, and the
 * engine runs the model on TF.js.
 */
import type * as tfTypes from '../tf-types.js';
import { RuntimeFailure } from '../../errors.js';
import { OnnxGraphBuilder, type AttrValue } from '../onnx-build.js';
import type { LayerInfo } from '../types.js';

export interface GraphNode {
  name: string;
  op: string;
  input: string[];
  attr: Record<string, unknown>;
}

export interface GraphSource {
  /** Nodes in topological order. */
  nodes: readonly GraphNode[];
  /** Name of the input Placeholder node. */
  inputNode: string;
  inputShape: readonly (number | null)[];
  /** The runner's layers (float, per-sample nodes, with their measured shapes). */
  layers: readonly LayerInfo[];
  /** Const node values by node name (GraphModel.weights). */
  weights: tfTypes.NamedTensorMap | Record<string, tfTypes.Tensor[]>;
}

function fail(node: GraphNode, why: string): RuntimeFailure {
  return new RuntimeFailure(`cannot convert node \`${node.name}\` (${node.op}) to ONNX: ${why}`);
}

/** `^ctrl`, `name:0` and `name` → `name`; other output indices are refused. */
function ref(node: GraphNode, r: string): string {
  const colon = r.lastIndexOf(':');
  if (colon > 0 && /^\d+$/.test(r.slice(colon + 1))) {
    if (r.slice(colon + 1) !== '0') throw fail(node, `it reads output ${r.slice(colon + 1)} of \`${r.slice(0, colon)}\` (only first outputs are supported)`);
    return r.slice(0, colon);
  }
  return r;
}

function dataInputs(node: GraphNode): string[] {
  return node.input.filter((r) => !r.startsWith('^')).map((r) => ref(node, r));
}

function attr(node: GraphNode, name: string): Record<string, unknown> | null {
  const a = node.attr[name];
  return typeof a === 'object' && a !== null && !Array.isArray(a) ? (a as Record<string, unknown>) : null;
}

/** Proto3-JSON bytes: base64 strings, or arrays of char codes from older converters. */
function bytesText(v: unknown): string | null {
  if (typeof v === 'string') return Buffer.from(v, 'base64').toString('utf8');
  if (Array.isArray(v) && v.every((c) => typeof c === 'number')) return String.fromCharCode(...(v as number[]));
  return null;
}

function attrString(node: GraphNode, name: string): string | null {
  return bytesText(attr(node, name)?.s);
}

function attrInts(node: GraphNode, name: string): number[] | null {
  const list = attr(node, name)?.list as Record<string, unknown> | undefined;
  const i = list?.i;
  return Array.isArray(i) ? i.map((v) => Number(v)) : null;
}

function attrBool(node: GraphNode, name: string): boolean {
  return attr(node, name)?.b === true;
}

function attrFloat(node: GraphNode, name: string, fallback: number): number {
  const f = attr(node, name)?.f;
  return typeof f === 'number' ? f : fallback;
}

function attrStrings(node: GraphNode, name: string): string[] {
  const list = attr(node, name)?.list as Record<string, unknown> | undefined;
  return Array.isArray(list?.s) ? (list.s as unknown[]).map(bytesText).filter((t): t is string => t !== null) : [];
}

const UNARY: Record<string, string> = { Relu: 'Relu', Elu: 'Elu', Selu: 'Selu', Sigmoid: 'Sigmoid', Tanh: 'Tanh', Identity: 'Identity', Softplus: 'Softplus', Neg: 'Neg', Exp: 'Exp', Sqrt: 'Sqrt' };
const BINARY: Record<string, string> = { Add: 'Add', AddV2: 'Add', BiasAdd: 'Add', Sub: 'Sub', Mul: 'Mul', RealDiv: 'Div', Maximum: 'Max', Minimum: 'Min' };

export function graphModelToOnnx(src: GraphSource, graphName = 'tfjs-graph'): Uint8Array {
  const byName = new Map(src.nodes.map((n) => [n.name, n]));
  const shapes = new Map(src.layers.map((l) => [l.id, l.shape]));
  const b = new OnnxGraphBuilder(graphName);
  const made = new Set<string>();
  let fresh = 0;
  const tmp = (base: string, what: string): string => `${base}/__${what}_${fresh++}`;

  const constValue = (name: string): { data: Float32Array | Int32Array; shape: number[] } | null => {
    const node = byName.get(name);
    if (!node || node.op !== 'Const') return null;
    const w = (src.weights as Record<string, tfTypes.Tensor | tfTypes.Tensor[]>)[name];
    const t = Array.isArray(w) ? w[0] : w;
    if (!t) return null;
    const data = t.dataSync();
    return { data: data instanceof Int32Array ? data : Float32Array.from(data as ArrayLike<number>), shape: [...t.shape] };
  };
  const floatConst = (name: string, transform?: (c: { data: Float32Array; shape: number[] }) => { data: Float32Array; shape: number[] }): string => {
    const c = constValue(name);
    if (!c) throw new RuntimeFailure(`cannot convert: \`${name}\` is not a constant`);
    const f = { data: c.data instanceof Float32Array ? c.data : Float32Array.from(c.data), shape: c.shape };
    const v = transform ? transform(f) : f;
    const out = transform ? tmp(name, 'init') : name;
    if (!made.has(out)) {
      b.initializer(out, v.data, v.shape);
      made.add(out);
    }
    return out;
  };
  const ints = (base: string, values: number[]): string => {
    const out = tmp(base, 'ints');
    b.initializer(out, BigInt64Array.from(values.map((v) => BigInt(v))), [values.length]);
    return out;
  };
  const scalar = (base: string, v: number): string => {
    const out = tmp(base, 'scalar');
    b.initializer(out, new Float32Array([v]), []);
    return out;
  };
  /** The ONNX name of a data input: a computed tensor (converted first) or a float constant. */
  const operand = (node: GraphNode, name: string): string => {
    if (made.has(name)) return name;
    if (constValue(name)) return floatConst(name);
    throw fail(node, `its input \`${name}\` was not converted`);
  };
  const toNchw = (base: string, x: string): string => {
    const out = tmp(base, 'nchw');
    b.node('Transpose', [x], [out], { perm: [0, 3, 1, 2] });
    return out;
  };
  const toNhwc = (base: string, x: string, out: string): string => {
    b.node('Transpose', [x], [out], { perm: [0, 2, 3, 1] });
    return out;
  };
  const padAttrs = (node: GraphNode): Record<string, AttrValue> => {
    const p = attrString(node, 'padding') ?? 'VALID';
    if (p === 'SAME') return { auto_pad: 'SAME_UPPER' };
    if (p === 'VALID') return { pads: [0, 0, 0, 0] };
    if (p === 'EXPLICIT') {
      const e = attrInts(node, 'explicit_paddings') ?? [];
      if (e.length !== 8) throw fail(node, 'explicit_paddings is not 8 numbers');
      return { pads: [e[2]!, e[4]!, e[3]!, e[5]!] };
    }
    throw fail(node, `padding ${p}`);
  };
  const nhwc = (node: GraphNode): void => {
    const f = attrString(node, 'data_format');
    if (f !== null && f !== 'NHWC') throw fail(node, `data_format ${f} (only NHWC)`);
  };
  /** Fused ops after a conv or matmul: BiasAdd (the extra input), then one activation. */
  const fused = (node: GraphNode, pre: string, out: string, args: string[]): void => {
    const ops = attrStrings(node, 'fused_ops');
    let x = pre;
    let k = 0;
    for (const [i, op] of ops.entries()) {
      const last = i === ops.length - 1;
      const dst = last ? out : tmp(node.name, op);
      if (op === 'BiasAdd' || op === 'Add') b.node('Add', [x, operand(node, args[k++]!)], [dst]);
      else if (op === 'Relu') b.node('Relu', [x], [dst]);
      else if (op === 'Relu6') b.node('Clip', [x, scalar(node.name, 0), scalar(node.name, 6)], [dst]);
      else if (op === 'Elu') b.node('Elu', [x], [dst]);
      else if (op === 'LeakyRelu') b.node('LeakyRelu', [x], [dst], { alpha: attrFloat(node, 'leakyrelu_alpha', 0.2) });
      else if (op === 'Sigmoid') b.node('Sigmoid', [x], [dst]);
      else if (op === 'Tanh') b.node('Tanh', [x], [dst]);
      else throw fail(node, `fused op ${op}`);
      x = dst;
    }
    if (ops.length === 0) b.node('Identity', [x], [out]);
  };

  // The nodes the float layers need, walking back over data inputs (not into computed shapes).
  const needed = new Set<string>();
  const visit = (name: string): void => {
    if (needed.has(name)) return;
    const node = byName.get(name);
    if (!node) throw new RuntimeFailure(`cannot convert: node \`${name}\` is referenced but not defined`);
    needed.add(name);
    if (node.op === 'Const' || node.op === 'Placeholder') return;
    const ins = dataInputs(node);
    const feeds = node.op === 'Reshape' || node.op === 'Mean' || node.op === 'Max' || node.op === 'Squeeze' || node.op === 'ConcatV2' || node.op === 'Pad' ? (node.op === 'ConcatV2' ? ins.slice(0, -1) : ins.slice(0, 1)) : ins;
    for (const i of feeds) visit(i);
  };
  for (const l of src.layers) visit(l.id);

  b.input(src.inputNode, ['N', ...src.inputShape.slice(1).map((d) => (d === null ? 'free' : d))]);
  made.add(src.inputNode);
  for (const node of src.nodes) {
    if (!needed.has(node.name) || node.op === 'Const' || node.name === src.inputNode) continue;
    const ins = dataInputs(node);
    const out = node.name;
    const x = (): string => operand(node, ins[0]!);
    switch (node.op) {
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative': {
        nhwc(node);
        const depthwise = node.op.includes('Depthwise');
        const s = attrInts(node, 'strides') ?? [1, 1, 1, 1];
        const d = attrInts(node, 'dilations') ?? [1, 1, 1, 1];
        const w = constValue(ins[1]!);
        if (!w || w.shape.length !== 4) throw fail(node, 'its filter is not a constant 4-D tensor');
        const [kh, kw, ci, co] = w.shape as [number, number, number, number];
        const kernel = floatConst(ins[1]!, ({ data }) => {
          const out = new Float32Array(data.length);
          // TF [kh,kw,ci,co] → ONNX [co,ci,kh,kw]; depthwise [kh,kw,ci,m] → [ci·m,1,kh,kw].
          for (let a = 0; a < kh; a++)
            for (let bb = 0; bb < kw; bb++)
              for (let c = 0; c < ci; c++)
                for (let o = 0; o < co; o++) {
                  const src = ((a * kw + bb) * ci + c) * co + o;
                  out[depthwise ? ((c * co + o) * kh + a) * kw + bb : ((o * ci + c) * kh + a) * kw + bb] = data[src]!;
                }
          return { data: out, shape: depthwise ? [ci * co, 1, kh, kw] : [co, ci, kh, kw] };
        });
        const conv = tmp(out, 'conv');
        b.node('Conv', [toNchw(out, x()), kernel], [conv], { kernel_shape: [kh, kw], strides: [s[1]!, s[2]!], dilations: [d[1]!, d[2]!], ...(depthwise ? { group: ci } : {}), ...padAttrs(node) });
        const back = node.op.startsWith('Fused') || node.op.startsWith('_Fused') ? toNhwc(out, conv, tmp(out, 'nhwc')) : toNhwc(out, conv, out);
        if (back !== out) fused(node, back, out, ins.slice(2));
        break;
      }
      case 'MaxPool':
      case 'AvgPool': {
        nhwc(node);
        const k = attrInts(node, 'ksize') ?? [1, 1, 1, 1];
        const s = attrInts(node, 'strides') ?? [1, 1, 1, 1];
        const pooled = tmp(out, 'pool');
        b.node(node.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', [toNchw(out, x())], [pooled], { kernel_shape: [k[1]!, k[2]!], strides: [s[1]!, s[2]!], ...padAttrs(node), ...(node.op === 'AvgPool' ? { count_include_pad: 0 } : {}) });
        toNhwc(out, pooled, out);
        break;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        if (attrBool(node, 'transpose_a')) throw fail(node, 'transpose_a');
        const w = constValue(ins[1]!);
        const right = w ? floatConst(ins[1]!) : operand(node, ins[1]!);
        const transB = attrBool(node, 'transpose_b');
        if (node.op === 'MatMul') b.node('Gemm', [x(), right], [out], { transB: transB ? 1 : 0 });
        else {
          const pre = tmp(out, 'gemm');
          b.node('Gemm', [x(), right], [pre], { transB: transB ? 1 : 0 });
          fused(node, pre, out, ins.slice(2));
        }
        break;
      }
      case 'Relu6':
        b.node('Clip', [x(), scalar(out, 0), scalar(out, 6)], [out]);
        break;
      case 'LeakyRelu':
        b.node('LeakyRelu', [x()], [out], { alpha: attrFloat(node, 'alpha', 0.2) });
        break;
      case 'Softmax':
        b.node('Softmax', [x()], [out], { axis: -1 });
        break;
      case 'Reshape': {
        const c = constValue(ins[1]!);
        let target: number[];
        if (c) target = [...c.data].map((v, i) => (i === 0 ? -1 : v));
        else {
          const shape = shapes.get(out);
          if (!shape || shape.slice(1).some((v) => v === null)) throw fail(node, 'its target shape is computed and its output shape is not known');
          target = [-1, ...(shape.slice(1) as number[])];
        }
        b.node('Reshape', [x(), ints(out, target)], [out]);
        break;
      }
      case 'Squeeze': {
        const axes = attrInts(node, 'squeeze_dims') ?? attrInts(node, 'axis');
        if (!axes || axes.length === 0) throw fail(node, 'squeeze without explicit axes');
        b.node('Squeeze', [x(), ints(out, axes)], [out]);
        break;
      }
      case 'Mean':
      case 'Max': {
        const c = constValue(ins[1]!);
        if (!c) throw fail(node, 'its reduction axes are computed');
        b.node(node.op === 'Mean' ? 'ReduceMean' : 'ReduceMax', [x()], [out], { axes: [...c.data].map(Number), keepdims: attrBool(node, 'keep_dims') ? 1 : 0 });
        break;
      }
      case 'ConcatV2': {
        const c = constValue(ins[ins.length - 1]!);
        if (!c) throw fail(node, 'its axis is computed');
        b.node('Concat', ins.slice(0, -1).map((i) => operand(node, i)), [out], { axis: Number(c.data[0]) });
        break;
      }
      case 'Pad':
      case 'PadV2': {
        const c = constValue(ins[1]!);
        if (!c) throw fail(node, 'its paddings are computed');
        const p = [...c.data].map(Number);
        const r = p.length / 2;
        const pads = [...Array.from({ length: r }, (_, i) => p[2 * i]!), ...Array.from({ length: r }, (_, i) => p[2 * i + 1]!)];
        b.node('Pad', [x(), ints(out, pads)], [out], { mode: 'constant' });
        break;
      }
      default:
        if (UNARY[node.op]) b.node(UNARY[node.op]!, [x()], [out]);
        else if (BINARY[node.op]) b.node(BINARY[node.op]!, [x(), operand(node, ins[1]!)], [out]);
        else throw fail(node, `op ${node.op} is not supported`);
    }
    made.add(out);
  }
  const output = src.layers.find((l) => l.isOutput) ?? src.layers[src.layers.length - 1];
  if (!output) throw new RuntimeFailure('cannot convert: the model has no float output');
  b.output(output.id);
  return b.toBytes(17);
}
