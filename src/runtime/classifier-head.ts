/**
 * The classifier head of a real model: the final linear layer (ONNX Gemm or MatMul(+Add) with
 * constant weights, or the last TF.js Dense), read from the model file, and the layer that feeds
 * it. NC3 in the audit and the low-rank analysis both compare it with feature geometry.
 */
import { readFile } from 'node:fs/promises';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { RuntimeFailure, errorMessage } from '../errors.js';
import { HEAD_PASS_OPS, decodeModel, toNum, type ModelProto } from './onnx-graph.js';
import { VALUE_PRESERVING } from './tfjs-default-layers.js';
import { outputLayer } from './select.js';
import type { LayersModel } from './tf-types.js';
import type { ClassifierHead, LayerInfo, ModelRunner } from './types.js';

export type { ClassifierHead };


function noHead(label: string, why: string): RuntimeFailure {
  return new RuntimeFailure(
    `model ${label} has no detectable classifier head: ${why}; NC3 and the low-rank analysis need a final linear layer (Gemm, MatMul or Dense with constant weights, optionally followed by a softmax) producing the class scores`,
    'give a classifier whose output comes from a linear layer, not a feature extractor',
  );
}

function tensorValues(t: OnnxTypes.ITensorProto, label: string): { data: Float64Array; dims: number[] } {
  const dims = (t.dims ?? []).map((d) => toNum(d));
  const count = dims.reduce((a, b) => a * b, 1);
  let data: Float64Array;
  if (t.dataLocation === 1) throw new RuntimeFailure(`model ${label}: head weights \`${t.name}\` are stored as external data`);
  if (t.dataType === 1) {
    if (t.rawData && t.rawData.length > 0) {
      const buf = Buffer.from(t.rawData);
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(4 * i);
    } else data = Float64Array.from(t.floatData ?? []);
  } else if (t.dataType === 11) {
    if (t.rawData && t.rawData.length > 0) {
      const buf = Buffer.from(t.rawData);
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = buf.readDoubleLE(8 * i);
    } else data = Float64Array.from(t.doubleData ?? []);
  } else throw new RuntimeFailure(`model ${label}: head weights \`${t.name}\` have ONNX data type ${t.dataType ?? '?'}; float or double expected`);
  if (data.length !== count) throw new RuntimeFailure(`model ${label}: head weights \`${t.name}\` hold ${data.length} values for shape [${dims.join(',')}]`);
  return { data, dims };
}

/** Finds the classifier head of an ONNX graph: walk back from the first output through softmax/reshape-like and element-wise activation ops to a Gemm or MatMul(+Add) with constant weights. */
export function onnxClassifierHead(model: ModelProto, label = 'model'): ClassifierHead {
  const g = model.graph;
  if (!g || !g.node?.length) throw noHead(label, 'it has no graph');
  const outputName = g.output?.[0]?.name;
  if (!outputName) throw noHead(label, 'its graph has no outputs');
  const producer = new Map<string, OnnxTypes.INodeProto>();
  for (const n of g.node) for (const o of n.output ?? []) producer.set(o, n);
  const inits = new Map<string, OnnxTypes.ITensorProto>();
  for (const t of g.initializer ?? []) inits.set(t.name ?? '', t);
  for (const n of g.node) {
    if (n.opType === 'Constant') {
      const v = (n.attribute ?? []).find((a) => a.name === 'value')?.t;
      if (v && n.output?.[0]) inits.set(n.output[0], { ...v, name: n.output[0] });
    }
  }
  const attr = (n: OnnxTypes.INodeProto, name: string): OnnxTypes.IAttributeProto | undefined => (n.attribute ?? []).find((a) => a.name === name);
  let t = outputName;
  let node = producer.get(t);
  const seen: string[] = [];
  // Softmax, reshapes and element-wise nonlinearities after the logits (a ReLU on the class scores) lead back to the linear layer.
  while (node && HEAD_PASS_OPS.has(node.opType ?? '') && seen.length <= g.node.length) {
    seen.push(node.opType ?? '');
    t = node.input?.[0] ?? '';
    node = producer.get(t);
  }
  if (!node) throw noHead(label, `output \`${outputName}\` is not produced by any node`);
  const op = node.opType ?? '';
  let W: Float64Array;
  let K: number;
  let d: number;
  let bias: Float64Array | null = null;
  let input: string;
  let description: string;
  const weightOf = (name: string | undefined): { data: Float64Array; dims: number[] } | null => {
    const init = name ? inits.get(name) : undefined;
    return init ? tensorValues(init, label) : null;
  };
  if (op === 'Gemm') {
    if (toNum(attr(node, 'transA')?.i) !== 0) throw noHead(label, `the final Gemm \`${node.name}\` transposes its input (transA = 1)`);
    const B = weightOf(node.input?.[1]);
    if (!B || B.dims.length !== 2) throw noHead(label, `the final Gemm \`${node.name}\` has no constant 2-D weight matrix`);
    const transB = toNum(attr(node, 'transB')?.i) !== 0;
    const alphaAttr = attr(node, 'alpha');
    const alpha = alphaAttr?.f ?? 1;
    [d, K] = transB ? [B.dims[1]!, B.dims[0]!] : [B.dims[0]!, B.dims[1]!];
    W = new Float64Array(K * d);
    for (let y = 0; y < K; y++) for (let c = 0; c < d; c++) W[y * d + c] = alpha * (transB ? B.data[y * d + c]! : B.data[c * K + y]!);
    const C = weightOf(node.input?.[2]);
    if (C && C.data.length === K) bias = C.data;
    input = node.input?.[0] ?? '';
    description = `Gemm ${node.name || ''} (weights ${node.input?.[1]})`.replace('  ', ' ');
  } else if (op === 'MatMul' || op === 'Add') {
    let mm = node;
    if (op === 'Add') {
      const [a, b] = node.input ?? [];
      const pa = a ? producer.get(a) : undefined;
      const pb = b ? producer.get(b) : undefined;
      const isMM = (p: OnnxTypes.INodeProto | undefined) => p?.opType === 'MatMul';
      if (isMM(pa) && b && inits.has(b)) {
        mm = pa!;
        bias = weightOf(b)?.data ?? null;
      } else if (isMM(pb) && a && inits.has(a)) {
        mm = pb!;
        bias = weightOf(a)?.data ?? null;
      } else throw noHead(label, `output \`${outputName}\` comes from an Add that is not a MatMul plus a constant bias`);
    }
    const B = weightOf(mm.input?.[1]);
    if (!B || B.dims.length !== 2) throw noHead(label, `the final MatMul \`${mm.name}\` has no constant 2-D weight matrix`);
    [d, K] = [B.dims[0]!, B.dims[1]!];
    W = new Float64Array(K * d);
    for (let y = 0; y < K; y++) for (let c = 0; c < d; c++) W[y * d + c] = B.data[c * K + y]!;
    if (bias && bias.length !== K) bias = null;
    input = mm.input?.[0] ?? '';
    description = `MatMul ${mm.name || ''} (weights ${mm.input?.[1]})`.replace('  ', ' ');
  } else {
    throw noHead(label, `its output \`${outputName}\` is produced by ${op}${seen.length ? ` (after ${seen.join(', ')})` : ''}, not by a linear layer`);
  }
  if (K < 2) throw noHead(label, `the final linear layer has ${K} output`);
  return { W, bias, K, d, inputLayer: input, outputLayer: outputName, description };
}

/**
 * The classifier head of an open model: the runner says how its format finds it (ONNX: the graph,
 * TF.js layers model: the last Dense layer; see the functions below, which the runners call).
 */
export async function readClassifierHead(runner: ModelRunner, label = runner.path): Promise<ClassifierHead> {
  return runner.classifierHead(label);
}

/** ONNX runners: re-read the model's graph and find the head in it (onnxClassifierHead). */
export async function onnxRunnerHead(runner: { readonly path: string; layers(): LayerInfo[] }, label: string): Promise<ClassifierHead> {
  let model: ModelProto;
  try {
    model = decodeModel(new Uint8Array(await readFile(runner.path)));
  } catch (e) {
    throw new RuntimeFailure(`model ${label}: cannot re-read its ONNX graph for the head weights: ${errorMessage(e)}`);
  }
  const head = onnxClassifierHead(model, label);
  const ids = new Set(runner.layers().map((l) => l.id));
  const out = ids.has(head.outputLayer) ? head.outputLayer : outputLayer(runner.layers()).id;
  return { ...head, inputLayer: head.inputLayer && ids.has(head.inputLayer) ? head.inputLayer : null, outputLayer: out };
}

/** TF.js layers runners: the last Dense layer before the output (through activations, softmax, dropout, reshapes). */
export function layersModelHead(runner: { readonly layersModel: LayersModel; layers(): LayerInfo[] }, label: string): ClassifierHead {
  const lm = runner.layersModel;
  const outs = lm.outputLayers;
  let layer = outs[outs.length - 1];
  const passClasses = new Set(['Activation', 'Softmax', 'Dropout', 'Flatten', 'Reshape', 'ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'ThresholdedReLU']);
  while (layer && passClasses.has(layer.getClassName())) layer = layer.inboundNodes[0]?.inboundLayers[0];
  if (!layer) throw noHead(label, 'no layer produces its output');
  const cls = layer.getClassName();
  if (cls !== 'Dense') throw noHead(label, `its output comes from a ${cls} layer (\`${layer.name}\`), not from a Dense layer`);
  const cfg = layer.getConfig() as { activation?: unknown; use_bias?: unknown };
  const act = typeof cfg.activation === 'string' ? cfg.activation : 'linear';
  // An element-wise activation on the scores (relu, sigmoid, …) still leaves the Dense kernel as the head.
  if (!['linear', 'softmax', 'relu', 'relu6', 'sigmoid', 'tanh', 'elu', 'selu', 'softplus', 'hardSigmoid', 'swish', 'gelu'].includes(act)) throw noHead(label, `the final Dense layer \`${layer.name}\` has a ${act} activation, so its output is not class scores`);
  const weights = layer.getWeights();
  const kernel = weights[0];
  if (!kernel || kernel.shape.length !== 2) throw noHead(label, `the final Dense layer \`${layer.name}\` has no 2-D kernel`);
  const [d, K] = kernel.shape as [number, number];
  const kv = kernel.dataSync();
  const W = new Float64Array(K * d);
  for (let y = 0; y < K; y++) for (let c = 0; c < d; c++) W[y * d + c] = kv[c * K + y]!;
  const bias = weights[1] ? Float64Array.from(weights[1].dataSync()) : null;
  // Dropout and the like hand on the same values: the features are the layer before them.
  let src = layer.inboundNodes[0]?.inboundLayers[0];
  while (src && VALUE_PRESERVING.has(src.getClassName()) && src.inboundNodes[0]?.inboundLayers[0]) src = src.inboundNodes[0].inboundLayers[0];
  const inbound = src?.name ?? null;
  const ids = new Set(runner.layers().map((l) => l.id));
  return { W, bias, K, d, inputLayer: inbound && ids.has(inbound) ? inbound : null, outputLayer: outputLayer(runner.layers()).id, description: `Dense ${layer.name} (${act})` };
}

/** TF.js graph runners: the weights are not layers, so there is no head to read. */
export function graphModelHead(label: string): never {
  throw new RuntimeFailure(`model ${label} is a TF.js graph model; reading its classifier head weights is not supported`, 'use the ONNX or TF.js layers form of the model');
}
