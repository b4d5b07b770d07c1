/**
 * One converter per TF.js layer class. Each gets the layer's input values and returns its
 * output under the layer's own name; the op that produces that name is the layer's last
 * (activation after conv/dense, so the ONNX runner's default selection — activations and pools —
 * lands on the same ids as the TF.js runner's).
 */
import type * as tfTypes from '../tf-types.js';
import { RuntimeFailure } from '../../errors.js';
import { activate } from './activations.js';
import type { ExportContext, Value } from './onnx-context.js';

export type Layer = tfTypes.LayersModel['layers'][number];
export type Config = Record<string, unknown>;

export interface LayerInput {
  layer: Layer;
  config: Config;
  inputs: Value[];
  /** Weights in `layer.getWeights()` order, with their TF.js names. */
  weights: { name: string; data: Float32Array; shape: number[] }[];
  /** The layer's TF.js output shape, batch first as null. */
  outShape: (number | null)[];
}

export type Converter = (ctx: ExportContext, l: LayerInput) => Value;

export function unsupported(layer: Layer, why: string): RuntimeFailure {
  return new RuntimeFailure(`cannot export layer \`${layer.name}\` (${layer.getClassName()}) to ONNX: ${why}`);
}

export function cfgNumber(l: LayerInput, key: string, fallback?: number): number {
  const v = l.config[key];
  if (typeof v === 'number') return v;
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
  }
  throw unsupported(l.layer, `config \`${key}\` is ${JSON.stringify(v)}, expected a number`);
}

function cfgPair(l: LayerInput, key: string, fallback?: [number, number]): [number, number] {
  const v = l.config[key];
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0] as number, v[1] as number];
  if ((v === undefined || v === null) && fallback) return fallback;
  throw unsupported(l.layer, `config \`${key}\` is ${JSON.stringify(v)}, expected one or two numbers`);
}

export function cfgString(l: LayerInput, key: string, fallback: string): string {
  const v = l.config[key];
  return typeof v === 'string' ? v : fallback;
}

function one(l: LayerInput): Value {
  if (l.inputs.length !== 1) throw unsupported(l.layer, `expected one input, got ${l.inputs.length}`);
  return l.inputs[0]!;
}

export function weight(l: LayerInput, suffix: string): { data: Float32Array; shape: number[] } {
  const w = l.weights.find((x) => x.name === suffix || x.name.endsWith(`/${suffix}`));
  if (!w) throw unsupported(l.layer, `weight \`${suffix}\` not found (has ${l.weights.map((x) => x.name).join(', ') || 'none'})`);
  return w;
}

function channelsLast(l: LayerInput): void {
  const f = cfgString(l, 'dataFormat', 'channelsLast');
  if (f !== 'channelsLast') throw unsupported(l.layer, `dataFormat ${f} (only channelsLast, TF.js's default, is supported)`);
}

/** TF 'same' padding: the extra row/column goes at the end (ONNX SAME_UPPER). */
function samePads(inSize: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(inSize / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** ONNX `pads` [top, left, bottom, right], or an auto_pad attribute when the size is unknown. */
function padAttrs(l: LayerInput, x: Value, k: [number, number], s: [number, number], d: [number, number]): Record<string, number[] | string> {
  const padding = cfgString(l, 'padding', 'valid');
  if (padding === 'valid') return { pads: [0, 0, 0, 0] };
  if (padding !== 'same') throw unsupported(l.layer, `padding ${padding}`);
  const [h, w] = [x.shape[1], x.shape[2]];
  if (typeof h !== 'number' || typeof w !== 'number') return { auto_pad: 'SAME_UPPER' };
  const [t, b] = samePads(h, k[0], s[0], d[0]);
  const [le, r] = samePads(w, k[1], s[1], d[1]);
  return { pads: [t, le, b, r] };
}

function transposeKernel(w: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  // [kh,kw,ci,co] → [co,ci,kh,kw]
  const out = new Float32Array(w.length);
  for (let a = 0; a < kh!; a++)
    for (let b = 0; b < kw!; b++)
      for (let c = 0; c < ci!; c++)
        for (let o = 0; o < co!; o++) out[((o * ci! + c) * kh! + a) * kw! + b] = w[((a * kw! + b) * ci! + c) * co! + o]!;
  return out;
}

/** Rank-4 results are stored NCHW before the activation, which then carries the layer's name. */
function finish(ctx: ExportContext, l: LayerInput, pre: Value, activation: string): Value {
  return activate(ctx, ctx.channelsFirst(pre), activation, l.layer.name, l.layer.getClassName());
}

const dense: Converter = (ctx, l) => {
  const x = ctx.semantic(one(l));
  const name = l.layer.name;
  const k = weight(l, 'kernel');
  const useBias = l.config.useBias !== false;
  const w = ctx.floats(`${name}/kernel`, k.data, k.shape);
  const act = cfgString(l, 'activation', 'linear');
  let pre: string;
  if (x.shape.length === 2) {
    const inputs = [x.name, w];
    if (useBias) inputs.push(ctx.floats(`${name}/bias`, weight(l, 'bias').data, [k.shape[1]!]));
    pre = ctx.node('Gemm', inputs, ctx.fresh(`${name}/gemm`));
  } else {
    pre = ctx.node('MatMul', [x.name, w], ctx.fresh(`${name}/matmul`));
    if (useBias) pre = ctx.node('Add', [pre, ctx.floats(`${name}/bias`, weight(l, 'bias').data, [k.shape[1]!])], ctx.fresh(`${name}/add`));
  }
  return finish(ctx, l, { name: pre, shape: l.outShape, nchw: false }, act);
};

const conv2d: Converter = (ctx, l) => {
  channelsLast(l);
  const x = ctx.channelsFirst(one(l));
  const name = l.layer.name;
  const k = weight(l, 'kernel');
  const kernel: [number, number] = [k.shape[0]!, k.shape[1]!];
  const strides = cfgPair(l, 'strides', [1, 1]);
  const dil = cfgPair(l, 'dilationRate', [1, 1]);
  const inputs = [x.name, ctx.floats(`${name}/kernel`, transposeKernel(k.data, k.shape), [k.shape[3]!, k.shape[2]!, k.shape[0]!, k.shape[1]!])];
  if (l.config.useBias !== false) inputs.push(ctx.floats(`${name}/bias`, weight(l, 'bias').data, [k.shape[3]!]));
  const pre = ctx.node('Conv', inputs, ctx.fresh(`${name}/conv`), {
    kernel_shape: kernel,
    strides,
    dilations: dil,
    ...padAttrs(l, x, kernel, strides, dil),
  });
  return finish(ctx, l, { name: pre, shape: l.outShape, nchw: true }, cfgString(l, 'activation', 'linear'));
};

/** TF's depthwise kernel [kh,kw,ci,m] → ONNX grouped-conv weights [ci·m,1,kh,kw]; output channel c·m + j as in TF. */
function depthwiseKernel(w: Float32Array, [kh, kw, ci, m]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < kh!; a++)
    for (let b = 0; b < kw!; b++)
      for (let c = 0; c < ci!; c++)
        for (let j = 0; j < m!; j++) out[((c * m! + j) * kh! + a) * kw! + b] = w[((a * kw! + b) * ci! + c) * m! + j]!;
  return out;
}

const depthwiseConv2d: Converter = (ctx, l) => {
  channelsLast(l);
  const x = ctx.channelsFirst(one(l));
  const name = l.layer.name;
  const k = weight(l, 'depthwise_kernel');
  const [kh, kw, ci, m] = k.shape as [number, number, number, number];
  const kernel: [number, number] = [kh, kw];
  const strides = cfgPair(l, 'strides', [1, 1]);
  const dil = cfgPair(l, 'dilationRate', [1, 1]);
  const inputs = [x.name, ctx.floats(`${name}/kernel`, depthwiseKernel(k.data, k.shape), [ci * m, 1, kh, kw])];
  if (l.config.useBias !== false) inputs.push(ctx.floats(`${name}/bias`, weight(l, 'bias').data, [ci * m]));
  const pre = ctx.node('Conv', inputs, ctx.fresh(`${name}/conv`), {
    kernel_shape: kernel,
    strides,
    dilations: dil,
    group: ci,
    ...padAttrs(l, x, kernel, strides, dil),
  });
  return finish(ctx, l, { name: pre, shape: l.outShape, nchw: true }, cfgString(l, 'activation', 'linear'));
};

/** Inference-time batch norm over the channel axis (the last, TF.js's default) of a 2-D or 4-D input. */
const batchNorm: Converter = (ctx, l) => {
  const v = one(l);
  const rank = l.outShape.length;
  const axis = l.config.axis;
  const a = typeof axis === 'number' ? axis : Array.isArray(axis) && axis.length === 1 && typeof axis[0] === 'number' ? axis[0] : -1;
  if ((a < 0 ? a + rank : a) !== rank - 1 || (rank !== 2 && rank !== 4)) throw unsupported(l.layer, `normalisation over axis ${JSON.stringify(axis)} of a rank-${rank} tensor (only the channel axis, last, of 2-D or 4-D tensors)`);
  const x = rank === 4 ? ctx.channelsFirst(v) : ctx.semantic(v);
  const c = l.outShape[rank - 1];
  if (typeof c !== 'number') throw unsupported(l.layer, 'unknown channel count');
  const name = l.layer.name;
  const gamma = l.config.scale === false ? new Float32Array(c).fill(1) : weight(l, 'gamma').data;
  const beta = l.config.center === false ? new Float32Array(c) : weight(l, 'beta').data;
  const inputs = [x.name, ctx.floats(`${name}/gamma`, gamma, [c]), ctx.floats(`${name}/beta`, beta, [c]), ctx.floats(`${name}/moving_mean`, weight(l, 'moving_mean').data, [c]), ctx.floats(`${name}/moving_variance`, weight(l, 'moving_variance').data, [c])];
  const out = ctx.node('BatchNormalization', inputs, ctx.reserve(name), { epsilon: cfgNumber(l, 'epsilon', 1e-3) });
  return { name: out, shape: l.outShape, nchw: rank === 4 };
};

function pool2d(op: 'MaxPool' | 'AveragePool'): Converter {
  return (ctx, l) => {
    channelsLast(l);
    const x = ctx.channelsFirst(one(l));
    const size = cfgPair(l, 'poolSize', [2, 2]);
    const strides = cfgPair(l, 'strides', size);
    const attrs: Record<string, number[] | string | number> = { kernel_shape: size, strides, ...padAttrs(l, x, size, strides, [1, 1]) };
    // TF averages only over the real (unpadded) cells, as ONNX does with count_include_pad = 0.
    if (op === 'AveragePool') attrs.count_include_pad = 0;
    return { name: ctx.node(op, [x.name], ctx.reserve(l.layer.name), attrs), shape: l.outShape, nchw: true };
  };
}

function globalPool(op: 'ReduceMean' | 'ReduceMax'): Converter {
  return (ctx, l) => {
    channelsLast(l);
    const x = ctx.channelsFirst(one(l));
    if (x.shape.length !== 4) throw unsupported(l.layer, 'expected a 4-D input');
    return { name: ctx.node(op, [x.name], ctx.reserve(l.layer.name), { axes: [2, 3], keepdims: 0 }), shape: l.outShape, nchw: false };
  };
}

const flatten: Converter = (ctx, l) => {
  // TF.js flattens NHWC, so a channels-first value goes back to NHWC first.
  const x = ctx.semantic(one(l));
  return { name: ctx.node('Flatten', [x.name], ctx.reserve(l.layer.name), { axis: 1 }), shape: l.outShape, nchw: false };
};

const reshape: Converter = (ctx, l) => {
  const x = ctx.semantic(one(l));
  const target = l.outShape.slice(1).map((d) => (d === null ? -1 : d));
  const out = ctx.node('Reshape', [x.name, ctx.ints(`${l.layer.name}/shape`, [0, ...target])], ctx.fresh(`${l.layer.name}/reshape`));
  return finish(ctx, l, { name: out, shape: l.outShape, nchw: false }, 'linear');
};

const permute: Converter = (ctx, l) => {
  const x = ctx.semantic(one(l));
  const dims = l.config.dims;
  if (!Array.isArray(dims) || !dims.every((d) => typeof d === 'number')) throw unsupported(l.layer, 'config `dims` is not a list of numbers');
  const out = ctx.node('Transpose', [x.name], ctx.fresh(`${l.layer.name}/transpose`), { perm: [0, ...(dims as number[])] });
  return finish(ctx, l, { name: out, shape: l.outShape, nchw: false }, 'linear');
};

const activationLayer: Converter = (ctx, l) => activate(ctx, one(l), cfgString(l, 'activation', 'linear'), l.layer.name, 'Activation');

const reluLayer: Converter = (ctx, l) => {
  const x = one(l);
  const max = l.config.maxValue;
  if (typeof max === 'number') {
    const out = ctx.node('Clip', [x.name, ctx.scalar(`${l.layer.name}/min`, 0), ctx.scalar(`${l.layer.name}/max`, max)], ctx.reserve(l.layer.name));
    return { ...x, name: out };
  }
  return activate(ctx, x, 'relu', l.layer.name, 'ReLU');
};

const leakyRelu: Converter = (ctx, l) => {
  const x = one(l);
  return { ...x, name: ctx.node('LeakyRelu', [x.name], ctx.reserve(l.layer.name), { alpha: cfgNumber(l, 'alpha', 0.3) }) };
};

const eluLayer: Converter = (ctx, l) => {
  const x = one(l);
  return { ...x, name: ctx.node('Elu', [x.name], ctx.reserve(l.layer.name), { alpha: cfgNumber(l, 'alpha', 1) }) };
};

const softmaxLayer: Converter = (ctx, l) => {
  const x = one(l);
  const axis = l.config.axis;
  const a = typeof axis === 'number' ? axis : Array.isArray(axis) && axis.length === 1 && typeof axis[0] === 'number' ? axis[0] : -1;
  return { ...x, name: ctx.node('Softmax', [x.name], ctx.reserve(l.layer.name), { axis: ctx.storedAxis(x, a) }) };
};

const layerNorm: Converter = (ctx, l) => {
  const x = ctx.semantic(one(l));
  const r = x.shape.length;
  const axis = l.config.axis;
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (typeof a === 'number' && a < 0 ? a + r : a));
  if (axes.length !== 1 || axes[0] !== r - 1) throw unsupported(l.layer, `normalisation over axis ${JSON.stringify(axis)} (only the last axis is supported)`);
  const d = x.shape[r - 1];
  if (typeof d !== 'number') throw unsupported(l.layer, 'unknown feature size');
  const name = l.layer.name;
  const gamma = l.config.scale === false ? new Float32Array(d).fill(1) : weight(l, 'gamma').data;
  const beta = l.config.center === false ? new Float32Array(d) : weight(l, 'beta').data;
  const out = ctx.node('LayerNormalization', [x.name, ctx.floats(`${name}/gamma`, gamma, [d]), ctx.floats(`${name}/beta`, beta, [d])], ctx.fresh(`${name}/ln`), {
    axis: -1,
    epsilon: cfgNumber(l, 'epsilon', 1e-3),
  });
  return finish(ctx, l, { name: out, shape: l.outShape, nchw: false }, 'linear');
};

const add: Converter = (ctx, l) => {
  if (l.inputs.length < 2) throw unsupported(l.layer, 'needs at least two inputs');
  const xs = l.inputs.map((v) => ctx.channelsFirst(v));
  const name = ctx.reserve(l.layer.name);
  const out = xs.length === 2 ? ctx.node('Add', [xs[0]!.name, xs[1]!.name], name) : ctx.node('Sum', xs.map((v) => v.name), name);
  return { name: out, shape: l.outShape, nchw: xs[0]!.nchw };
};

const concatenate: Converter = (ctx, l) => {
  const xs = l.inputs.map((v) => ctx.channelsFirst(v));
  const axis = ctx.storedAxis(xs[0]!, cfgNumber(l, 'axis', -1));
  return { name: ctx.node('Concat', xs.map((v) => v.name), ctx.reserve(l.layer.name), { axis }), shape: l.outShape, nchw: xs[0]!.nchw };
};

/** Dropout and noise layers are the identity at inference. */
const identity: Converter = (ctx, l) => {
  const x = one(l);
  return { ...x, name: ctx.node('Identity', [x.name], ctx.reserve(l.layer.name)) };
};

const zeroPadding2d: Converter = (ctx, l) => {
  channelsLast(l);
  const x = ctx.channelsFirst(one(l));
  const p = l.config.padding;
  let t: number, b: number, le: number, r: number;
  if (typeof p === 'number') [t, b, le, r] = [p, p, p, p];
  else if (Array.isArray(p) && p.every((v) => typeof v === 'number') && p.length === 2) [t, b, le, r] = [p[0], p[0], p[1], p[1]] as number[] as [number, number, number, number];
  else if (Array.isArray(p) && p.length === 2 && p.every((v) => Array.isArray(v) && v.length === 2)) {
    const q = p as number[][];
    [t, b, le, r] = [q[0]![0]!, q[0]![1]!, q[1]![0]!, q[1]![1]!];
  } else throw unsupported(l.layer, `padding ${JSON.stringify(p)}`);
  const pads = ctx.ints(`${l.layer.name}/pads`, [0, 0, t, le, 0, 0, b, r]);
  return { name: ctx.node('Pad', [x.name, pads], ctx.reserve(l.layer.name), { mode: 'constant' }), shape: l.outShape, nchw: true };
};

export const BUILTIN_CONVERTERS: Record<string, Converter> = {
  Dense: dense,
  Conv2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  BatchNormalization: batchNorm,
  MaxPooling2D: pool2d('MaxPool'),
  MaxPool2D: pool2d('MaxPool'),
  AveragePooling2D: pool2d('AveragePool'),
  AvgPool2D: pool2d('AveragePool'),
  GlobalAveragePooling2D: globalPool('ReduceMean'),
  GlobalMaxPooling2D: globalPool('ReduceMax'),
  Flatten: flatten,
  Reshape: reshape,
  Permute: permute,
  Activation: activationLayer,
  ReLU: reluLayer,
  LeakyReLU: leakyRelu,
  ELU: eluLayer,
  Softmax: softmaxLayer,
  LayerNormalization: layerNorm,
  Add: add,
  Concatenate: concatenate,
  Dropout: identity,
  SpatialDropout1D: identity,
  SpatialDropout2D: identity,
  GaussianNoise: identity,
  GaussianDropout: identity,
  AlphaDropout: identity,
  ZeroPadding2D: zeroPadding2d,
};
