/**
 * State of one TF.js → ONNX conversion: the node list, unique tensor names, weights, and the
 * layout of every 4-D value. TF.js keeps images NHWC; ONNX convolutions and pools want NCHW.
 * The rule: the graph input stays NHWC (so one preprocessing feeds both files), every 4-D layer
 * output is NCHW (what the ONNX runner reports for 4-D tensors), and Transposes are inserted
 * only where a value meets an op that wants the other layout. Nodes are kept here and handed to
 * OnnxGraphBuilder at the end, so the last op of a layer can be renamed to the layer's name.
 */
import type { AttrValue } from '../onnx-build.js';

/** A tensor in the ONNX graph, with its TF.js (semantic) shape, batch first as null. */
export interface Value {
  name: string;
  shape: (number | null)[];
  /** True when a 4-D value is stored NCHW in the graph; its `shape` is still the NHWC one. */
  nchw: boolean;
}

export interface PendingNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface Initializer {
  name: string;
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export const NHWC_TO_NCHW = [0, 3, 1, 2];
export const NCHW_TO_NHWC = [0, 2, 3, 1];

export class ExportContext {
  readonly nodes: PendingNode[] = [];
  readonly initializers: Initializer[] = [];
  private readonly used = new Set<string>();
  private readonly producer = new Map<string, PendingNode>();
  /** Names that must not be renamed: the graph input and published layer outputs. */
  private readonly fixed = new Set<string>();
  private readonly layoutCache = new Map<string, Value>();

  /** Reserve a name exactly (layer ids, the input); a clash is a bug in the caller. */
  reserve(name: string): string {
    if (this.used.has(name)) throw new Error(`ONNX tensor name \`${name}\` used twice`);
    this.used.add(name);
    this.fixed.add(name);
    return name;
  }

  /** A fresh internal name based on `base` (`conv_1/transpose`, `conv_1/transpose_2`, …). */
  fresh(base: string): string {
    let name = base;
    for (let k = 2; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  node(op: string, inputs: string[], output: string, attrs: Record<string, AttrValue> = {}): string {
    const n: PendingNode = { op, inputs, outputs: [output], attrs };
    this.nodes.push(n);
    this.producer.set(output, n);
    return output;
  }

  floats(base: string, data: Float32Array, dims: number[]): string {
    const name = this.fresh(base);
    this.initializers.push({ name, data, dims });
    return name;
  }

  ints(base: string, values: number[]): string {
    const name = this.fresh(base);
    this.initializers.push({ name, data: BigInt64Array.from(values.map((v) => BigInt(v))), dims: [values.length] });
    return name;
  }

  scalar(base: string, v: number): string {
    return this.floats(base, Float32Array.of(v), []);
  }

  /**
   * Give `v` the final name `name`: rename its producing node when that node is this layer's
   * own, otherwise (the value is the graph input or another layer's output) add an Identity.
   */
  publish(v: Value, name: string): Value {
    const n = this.producer.get(v.name);
    if (n && !this.fixed.has(v.name)) {
      this.producer.delete(v.name);
      this.used.delete(v.name);
      n.outputs[0] = this.reserve(name);
      this.producer.set(name, n);
    } else {
      this.node('Identity', [v.name], this.reserve(name));
    }
    this.fixed.add(name);
    return { ...v, name };
  }

  private transpose(v: Value, perm: number[], toNchw: boolean): Value {
    const key = `${v.name}|${toNchw ? 'nchw' : 'nhwc'}`;
    const hit = this.layoutCache.get(key);
    if (hit) return hit;
    const out = this.node('Transpose', [v.name], this.fresh(`${v.name}/${toNchw ? 'nchw' : 'nhwc'}`), { perm });
    const res = { name: out, shape: v.shape, nchw: toNchw };
    // Shared by every later consumer of `v`, so never renamed into some layer's output.
    this.fixed.add(out);
    this.layoutCache.set(key, res);
    return res;
  }

  /** The value in TF.js's own layout (NHWC for 4-D). */
  semantic(v: Value): Value {
    return v.nchw ? this.transpose(v, NCHW_TO_NHWC, false) : v;
  }

  /** A 4-D value in NCHW; other ranks unchanged. */
  channelsFirst(v: Value): Value {
    return v.shape.length === 4 && !v.nchw ? this.transpose(v, NHWC_TO_NCHW, true) : v;
  }

  /** Stored axis of semantic axis `axis` (negative counts from the end). */
  storedAxis(v: Value, axis: number): number {
    const r = v.shape.length;
    const a = axis < 0 ? axis + r : axis;
    if (!v.nchw) return a;
    return [0, 2, 3, 1][a]!;
  }
}
