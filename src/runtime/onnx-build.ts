/**
 * A small typed builder for ONNX models: enough for test fixtures and for exporting the plain
 * conv/dense networks layerprobe trains. It writes a ModelProto with onnx-proto; no shape
 * inference or checking happens here — onnxruntime does that when it loads the bytes.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;
const AttrType = onnx.AttributeProto.AttributeType;
const DataType = onnx.TensorProto.DataType;

/**
 * Attribute values. A plain number is written as INT when it is an integer, except for
 * attributes that ONNX defines as floats (alpha, epsilon, …) — integer-valued floats such as
 * Gemm's alpha = 1 would otherwise be rejected. `{ float }` / `{ floats }` force floats.
 */
export type AttrValue =
  | number
  | number[]
  | string
  | Float32Array
  | BigInt64Array
  | { float: number }
  | { floats: number[] };

export type ElemType = 'float' | 'int64';

const FLOAT_ATTRS = new Set([
  'alpha', 'beta', 'gamma', 'epsilon', 'momentum', 'bias', 'lambd', 'ratio', 'min', 'max',
  'scale', 'scales', 'spatial_scale', 'value_float', 'value_floats', 'threshold', 'p',
]);

/** Lowest IR version that can carry each opset (onnx/helper.py VERSION_TABLE). */
function irVersionFor(opset: number): number {
  if (opset <= 8) return 3;
  if (opset === 9) return 4;
  if (opset === 10) return 5;
  if (opset === 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  // Copy: rawData must not alias a caller's buffer that may change before encoding.
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

export function tensorProto(name: string, data: Float32Array | BigInt64Array, dims: readonly number[]): OnnxTypes.TensorProto {
  const count = dims.reduce((p, d) => p * d, 1);
  if (count !== data.length) throw new Error(`tensor ${name}: ${data.length} values do not fill dims [${dims.join(',')}]`);
  return onnx.TensorProto.create({
    name,
    dims: [...dims],
    dataType: data instanceof Float32Array ? DataType.FLOAT : DataType.INT64,
    rawData: bytesOf(data),
  });
}

function valueInfo(name: string, shape: readonly (number | string | null)[] | undefined, elem: ElemType): OnnxTypes.ValueInfoProto {
  const tensorType: OnnxTypes.TypeProto.ITensor = { elemType: elem === 'float' ? DataType.FLOAT : DataType.INT64 };
  if (shape) {
    tensorType.shape = {
      dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return onnx.ValueInfoProto.create({ name, type: { tensorType } });
}

function attribute(name: string, v: AttrValue): OnnxTypes.AttributeProto {
  const isFloat = FLOAT_ATTRS.has(name);
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: AttrType.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === 'number') {
    return isFloat || !Number.isInteger(v)
      ? onnx.AttributeProto.create({ name, type: AttrType.FLOAT, f: v })
      : onnx.AttributeProto.create({ name, type: AttrType.INT, i: v });
  }
  if (v instanceof Float32Array || v instanceof BigInt64Array) {
    return onnx.AttributeProto.create({ name, type: AttrType.TENSOR, t: tensorProto('', v, [v.length]) });
  }
  if (Array.isArray(v)) {
    return isFloat || v.some((x) => !Number.isInteger(x))
      ? onnx.AttributeProto.create({ name, type: AttrType.FLOATS, floats: v })
      : onnx.AttributeProto.create({ name, type: AttrType.INTS, ints: v });
  }
  if ('float' in v) return onnx.AttributeProto.create({ name, type: AttrType.FLOAT, f: v.float });
  return onnx.AttributeProto.create({ name, type: AttrType.FLOATS, floats: v.floats });
}

export class OnnxGraphBuilder {
  private readonly inputs: OnnxTypes.ValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.ValueInfoProto[] = [];
  private readonly inits: OnnxTypes.TensorProto[] = [];
  private readonly nodes: OnnxTypes.NodeProto[] = [];

  constructor(private readonly name = 'graph') {}

  /** A graph input; strings in `shape` are symbolic dims (e.g. 'N'). */
  input(name: string, shape: (number | string)[], elem: ElemType = 'float'): this {
    this.inputs.push(valueInfo(name, shape, elem));
    return this;
  }

  initializer(name: string, data: Float32Array | BigInt64Array, dims: number[]): this {
    this.inits.push(tensorProto(name, data, dims));
    return this;
  }

  /** Nodes must be added in topological order, as ONNX requires. */
  node(op: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): this {
    this.nodes.push(
      onnx.NodeProto.create({
        opType: op,
        name: `${op}_${this.nodes.length}`,
        input: inputs,
        output: outputs,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return this;
  }

  /** A graph output; leave out `shape` to let the runtime infer it. */
  output(name: string, shape?: (number | string | null)[], elem: ElemType = 'float'): this {
    this.outputs.push(valueInfo(name, shape, elem));
    return this;
  }

  toModel(opset = 13): OnnxTypes.ModelProto {
    return onnx.ModelProto.create({
      irVersion: irVersionFor(opset),
      producerName: 'layerprobe',
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }

  toBytes(opset = 13): Uint8Array {
    return onnx.ModelProto.encode(this.toModel(opset)).finish();
  }
}
