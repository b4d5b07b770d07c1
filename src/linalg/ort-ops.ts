/**
 * Matrix products at BLAS speed through onnxruntime. Each product is a one-node (or few-node)
 * ONNX graph built in code with symbolic dimensions, so one InferenceSession per graph kind
 * serves every shape. Plain JavaScript loops would spend seconds on what MLAS does in tens of
 * milliseconds, and tfjs-wasm is about 50× slower than MLAS here.
 *
 * Precision: the dtype of the input array picks the kernel. Float32Array runs the float32
 * kernels (fast; relative error ~1e-7 per entry); Float64Array runs the float64 kernels
 * (about 2× slower, error ~1e-16). Grams are summed over row blocks into float64 so that the
 * float32 accumulation inside each product stays short.
 */
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type FloatArray = Float32Array | Float64Array;
type OrtDtype = 'float32' | 'float64';

/** Rows per float32 product in `gram`/`crossGram`: bounds the float32 accumulation length. */
const ROW_BLOCK = 4096;

let intraOpNumThreads = 2;

/** Must be called before the first product; sessions already created keep their settings. */
export function configureOrt(opts: { intraOpNumThreads?: number }): void {
  if (opts.intraOpNumThreads !== undefined) {
    if (!Number.isInteger(opts.intraOpNumThreads) || opts.intraOpNumThreads < 1) {
      throw new Error(`intraOpNumThreads must be a positive integer, got ${opts.intraOpNumThreads}`);
    }
    intraOpNumThreads = opts.intraOpNumThreads;
  }
}

// ---------------------------------------------------------------------------------------------
// Graph building

export type Dim = string | number;

export interface TensorSpec {
  name: string;
  dtype: OrtDtype;
  dims: Dim[];
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, number | number[]>;
}

function elemType(dtype: OrtDtype): number {
  return dtype === 'float32' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.DOUBLE;
}

function valueInfo(t: TensorSpec): onnxProto.onnx.IValueInfoProto {
  return {
    name: t.name,
    type: {
      tensorType: {
        elemType: elemType(t.dtype),
        shape: { dim: t.dims.map((x) => (typeof x === 'string' ? { dimParam: x } : { dimValue: x })) },
      },
    },
  };
}

function attribute(name: string, v: number | number[]): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
}

/** A constant int64 tensor baked into the graph (e.g. the `axes` input of ReduceSum). */
export interface Int64Initializer {
  name: string;
  dims: number[];
  values: number[];
}

/** Serialises a small graph (opset 13, IR 8). Integer attributes are INT, others FLOAT. */
export function buildModel(spec: {
  name: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  nodes: NodeSpec[];
  initializers?: Int64Initializer[];
}): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: spec.name,
    initializer: (spec.initializers ?? []).map((t) =>
      onnx.TensorProto.create({ name: t.name, dataType: onnx.TensorProto.DataType.INT64, dims: t.dims, int64Data: t.values }),
    ),
    input: spec.inputs.map(valueInfo),
    output: spec.outputs.map(valueInfo),
    node: spec.nodes.map((n, i) =>
      onnx.NodeProto.create({
        name: `${n.op}_${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      }),
    ),
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'layerprobe',
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** One session per graph kind, created on first use and kept for the life of the process. */
export function cachedSession(key: string, build: () => Uint8Array): Promise<ort.InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(build(), {
      intraOpNumThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    // A failed creation must not poison the cache for later calls.
    s.catch(() => sessions.delete(key));
    sessions.set(key, s);
  }
  return s;
}

function dtypeOf(a: FloatArray): OrtDtype {
  return a instanceof Float64Array ? 'float64' : 'float32';
}

function checkLength(what: string, a: FloatArray, expected: number): void {
  if (a.length !== expected) {
    throw new Error(`${what}: array has ${a.length} values, shape implies ${expected}`);
  }
}

function tensor(a: FloatArray, dims: number[]): ort.Tensor {
  return a instanceof Float64Array ? new ort.Tensor('float64', a, dims) : new ort.Tensor('float32', a, dims);
}

async function runOne(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, out: string): Promise<FloatArray> {
  const res = await session.run(feeds);
  const t = res[out];
  if (!t) throw new Error(`onnxruntime returned no output ${out}`);
  const data = t.data;
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
    throw new Error(`onnxruntime output ${out} has unexpected type ${t.type}`);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Products

function gemmSession(dtype: OrtDtype, transA: 0 | 1, transB: 0 | 1): Promise<ort.InferenceSession> {
  return cachedSession(`gemm:${dtype}:${transA}${transB}`, () =>
    buildModel({
      name: 'gemm',
      inputs: [
        { name: 'A', dtype, dims: transA ? ['k', 'm'] : ['m', 'k'] },
        { name: 'B', dtype, dims: transB ? ['n', 'k'] : ['k', 'n'] },
      ],
      outputs: [{ name: 'C', dtype, dims: ['m', 'n'] }],
      nodes: [{ op: 'Gemm', inputs: ['A', 'B'], outputs: ['C'], attrs: { transA, transB } }],
    }),
  );
}

function addInto(acc: Float64Array, part: FloatArray): void {
  for (let i = 0; i < acc.length; i++) acc[i]! += part[i]!;
}

/**
 * Xᵀ X (d×d, row-major) for X [n, d] row-major. Float32 input is multiplied in float32 per
 * block of ROW_BLOCK rows and the blocks are summed in float64. With `into`, the product is
 * added to that d×d accumulator (and returned), which spares a d² allocation per call.
 */
export async function gram(X: FloatArray, n: number, d: number, into?: Float64Array): Promise<Float64Array> {
  checkLength('gram', X, n * d);
  if (into) checkLength('gram accumulator', into, d * d);
  const out = into ?? new Float64Array(d * d);
  if (n === 0 || d === 0) return out;
  const session = await gemmSession(dtypeOf(X), 1, 0);
  const block = X instanceof Float64Array ? n : ROW_BLOCK;
  // Several blocks go through a scratch sum first, so that a failing product never leaves a
  // caller's accumulator holding part of the result.
  const target = into && n > block ? new Float64Array(d * d) : out;
  for (let r0 = 0; r0 < n; r0 += block) {
    const rows = Math.min(block, n - r0);
    const part = X.subarray(r0 * d, (r0 + rows) * d);
    const t = tensor(part, [rows, d]);
    addInto(target, await runOne(session, { A: t, B: t }, 'C'));
  }
  if (target !== out) addInto(out, target);
  return out;
}

/** Xᵀ Y (d1×d2) for X [n, d1], Y [n, d2] (same dtype); blocked like `gram`. */
export async function crossGram(X: FloatArray, Y: FloatArray, n: number, d1: number, d2: number): Promise<Float64Array> {
  checkLength('crossGram X', X, n * d1);
  checkLength('crossGram Y', Y, n * d2);
  if (dtypeOf(X) !== dtypeOf(Y)) throw new Error('crossGram: X and Y must have the same dtype');
  const out = new Float64Array(d1 * d2);
  if (n === 0 || d1 === 0 || d2 === 0) return out;
  const session = await gemmSession(dtypeOf(X), 1, 0);
  const block = X instanceof Float64Array ? n : ROW_BLOCK;
  for (let r0 = 0; r0 < n; r0 += block) {
    const rows = Math.min(block, n - r0);
    const a = tensor(X.subarray(r0 * d1, (r0 + rows) * d1), [rows, d1]);
    const b = tensor(Y.subarray(r0 * d2, (r0 + rows) * d2), [rows, d2]);
    addInto(out, await runOne(session, { A: a, B: b }, 'C'));
  }
  return out;
}

/** X Xᵀ (n×n) for X [n, d]: the smaller Gram when n < d. */
export async function outerGram(X: FloatArray, n: number, d: number): Promise<Float64Array> {
  checkLength('outerGram', X, n * d);
  if (n === 0 || d === 0) return new Float64Array(n * n);
  const session = await gemmSession(dtypeOf(X), 0, 1);
  const t = tensor(X, [n, d]);
  return Float64Array.from(await runOne(session, { A: t, B: t }, 'C'));
}

/** A B for A [m, k], B [k, n]; the result has the dtype of the inputs. */
export async function matmul(A: Float32Array, B: Float32Array, m: number, k: number, n: number): Promise<Float32Array>;
export async function matmul(A: Float64Array, B: Float64Array, m: number, k: number, n: number): Promise<Float64Array>;
export async function matmul(A: FloatArray, B: FloatArray, m: number, k: number, n: number): Promise<FloatArray> {
  checkLength('matmul A', A, m * k);
  checkLength('matmul B', B, k * n);
  if (dtypeOf(A) !== dtypeOf(B)) throw new Error('matmul: A and B must have the same dtype');
  if (m === 0 || n === 0 || k === 0) return A instanceof Float64Array ? new Float64Array(m * n) : new Float32Array(m * n);
  const session = await gemmSession(dtypeOf(A), 0, 0);
  const out = await runOne(session, { A: tensor(A, [m, k]), B: tensor(B, [k, n]) }, 'C');
  // onnxruntime may hand back a view on a pooled buffer; copy so callers own their result.
  return out instanceof Float64Array ? Float64Array.from(out) : Float32Array.from(out);
}
