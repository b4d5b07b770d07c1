/**
 * Which TF.js layers / graph nodes a probe looks at when the user names none (the rule is
 * default-layers.ts; this file classifies TF.js layer classes and graph ops for it). Kept apart from the runners so the rule
 * is written once for layers and graph models and can be read (and tested) without TF.js.
 */
import { chooseDefaultLayers, graphDepths, type DagNode } from './default-layers.js';

/** Keras/TF.js layer classes whose `activation` config makes their output a post-nonlinearity representation. */
export const WEIGHTED_LAYER_CLASSES: ReadonlySet<string> = new Set([
  'Dense',
  'Conv1D',
  'Conv2D',
  'Conv3D',
  'DepthwiseConv2D',
  'SeparableConv1D',
  'SeparableConv2D',
  'Conv2DTranspose',
  'Conv3DTranspose',
]);

/** Layers that are a nonlinearity on their own. Softmax is left out: it normalises, it is not a hidden feature map. */
export const ACTIVATION_LAYER_CLASSES: ReadonlySet<string> = new Set(['ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'ThresholdedReLU']);

export const POOLING_LAYER_CLASSES: ReadonlySet<string> = new Set([
  'MaxPooling1D',
  'MaxPooling2D',
  'MaxPooling3D',
  'MaxPool1D',
  'MaxPool2D',
  'MaxPool3D',
  'AveragePooling1D',
  'AveragePooling2D',
  'AveragePooling3D',
  'AvgPool1D',
  'AvgPool2D',
  'AvgPool3D',
  'GlobalMaxPooling1D',
  'GlobalMaxPooling2D',
  'GlobalAveragePooling1D',
  'GlobalAveragePooling2D',
  'GlobalMaxPool1D',
  'GlobalMaxPool2D',
  'GlobalAvgPool1D',
  'GlobalAvgPool2D',
]);

/**
 * Custom layer classes whose output is one residual/transformer block; each such block contributes
 * its output to the default selection. `TransformerBlock` is layerprobe's own ViT block
 * (src/runtime/tfjs-layers/vit-layers.ts).
 */
export const TRANSFORMER_BLOCK_CLASSES: Set<string> = new Set(['TransformerBlock']);

/** Activation names that do not make a hidden representation nonlinear (or are not hidden features). */
const NOT_HIDDEN_ACTIVATIONS: ReadonlySet<string> = new Set(['linear', 'softmax', '']);

/** TF graph ops that apply a nonlinearity. */
export const GRAPH_ACTIVATION_OPS: ReadonlySet<string> = new Set([
  'Relu',
  'Relu6',
  'Elu',
  'Selu',
  'Tanh',
  'Sigmoid',
  'LeakyRelu',
  'Prelu',
]);

export const GRAPH_POOLING_OPS: ReadonlySet<string> = new Set(['MaxPool', 'MaxPoolV2', 'MaxPool3D', 'AvgPool', 'AvgPool3D']);

export function layerIsActivated(className: string, config: Record<string, unknown>): boolean {
  if (ACTIVATION_LAYER_CLASSES.has(className)) return true;
  const act = typeof config.activation === 'string' ? config.activation : '';
  if (className === 'Activation') return !NOT_HIDDEN_ACTIVATIONS.has(act);
  if (WEIGHTED_LAYER_CLASSES.has(className)) return !NOT_HIDDEN_ACTIVATIONS.has(act);
  return false;
}

/** `fusedOps` is the decoded `fused_ops` attribute of _FusedConv2D / _FusedMatMul / FusedDepthwiseConv2dNative. */
export function graphNodeIsActivated(op: string, fusedOps: readonly string[]): boolean {
  if (GRAPH_ACTIVATION_OPS.has(op)) return true;
  return fusedOps.some((f) => GRAPH_ACTIVATION_OPS.has(f));
}

/** Layer classes / graph ops that only rearrange values. */
const RESHAPE_CLASSES: ReadonlySet<string> = new Set([
  'Flatten', 'Reshape', 'Permute', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'GaussianDropout', 'AlphaDropout',
  'Squeeze', 'ExpandDims', 'Transpose', 'Identity',
]);
/** Shape-keeping one-input layer classes / graph ops (with one feature input: the rest are weights or constants). */
const ELEMENTWISE_CLASSES: ReadonlySet<string> = new Set([
  ...ACTIVATION_LAYER_CLASSES, ...GRAPH_ACTIVATION_OPS, 'Activation', 'BatchNormalization', 'GaussianNoise',
  'BiasAdd', 'Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'FusedBatchNorm', 'FusedBatchNormV3',
]);
/** Layer classes / graph ops that join parallel paths (residual adds, module concatenations). */
const MERGE_CLASSES: ReadonlySet<string> = new Set(['Add', 'Concatenate', 'Average', 'Maximum', 'Subtract', 'AddV2', 'AddN', 'ConcatV2', 'Concat']);
const NORM_CLASSES: ReadonlySet<string> = new Set(['LayerNormalization']);
/** Graph ops with learned weights (their weight input is a constant, not a feature). */
const GRAPH_WEIGHTED_OPS: ReadonlySet<string> = new Set([
  'Conv2D', '_FusedConv2D', 'Conv3D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative', 'MatMul', '_FusedMatMul', 'BatchMatMul', 'BatchMatMulV2', 'Conv2DBackpropInput',
]);
const MATMUL_OPS: ReadonlySet<string> = new Set(['MatMul', '_FusedMatMul', 'BatchMatMul', 'BatchMatMulV2', 'Einsum']);
/** What a walk from the output back to the classifier head passes through. */
const HEAD_PASS: ReadonlySet<string> = new Set([...RESHAPE_CLASSES, ...ACTIVATION_LAYER_CLASSES, ...GRAPH_ACTIVATION_OPS, 'Activation', 'Softmax', 'LogSoftmax']);
/** Layers whose output equals their input at inference. */
export const VALUE_PRESERVING: ReadonlySet<string> = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'GaussianDropout', 'GaussianNoise', 'AlphaDropout', 'Identity']);
const HEAD_LINEAR: ReadonlySet<string> = new Set(['Dense', 'MatMul', '_FusedMatMul']);

/** The id the model input has in DagNode inputs (layers reading the input list no listed input). */
const INPUT = '\u0000input';

export interface SelectionNode {
  id: string;
  /** Layer class (layers models) or graph op (graph models). */
  op: string;
  /** Rank of the output with the batch dim (4 for a conv map, 2 for a vector). */
  rank: number;
  /** Ids of the listed nodes feeding this one (data inputs only); empty for readers of the model input. */
  inputs: readonly string[];
  activated: boolean;
  pool: boolean;
  block: boolean;
  isOutput: boolean;
}

/**
 * The per-format rule for sequential models: hidden nonlinearity outputs, pooling outputs and
 * block outputs, never the model output. A pool that directly consumes an activation (its only
 * consumer) replaces it, so each conv block counts once.
 */
function sequentialSelection(nodes: readonly SelectionNode[]): Set<string> {
  const consumers = new Map<string, number>();
  for (const n of nodes) for (const i of new Set(n.inputs)) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const selected = new Set<string>();
  for (const n of nodes) if (!n.isOutput && (n.activated || n.pool || n.block)) selected.add(n.id);
  for (const n of nodes) {
    if (!n.pool || n.inputs.length !== 1) continue;
    const src = byId.get(n.inputs[0]!);
    if (src && src.activated && !src.block && consumers.get(src.id) === 1) selected.delete(src.id);
  }
  return selected;
}

function dagNodes(nodes: readonly SelectionNode[]): DagNode[] {
  return nodes.map((n) => {
    const inputs = n.inputs.length === 0 ? [INPUT] : n.inputs;
    const feature = new Set(inputs).size;
    const attention = MATMUL_OPS.has(n.op) && feature >= 2;
    return {
      id: n.id,
      inputs,
      weighted: (WEIGHTED_LAYER_CLASSES.has(n.op) || GRAPH_WEIGHTED_OPS.has(n.op) || n.block) && !attention,
      attention,
      merge: MERGE_CLASSES.has(n.op),
      reshape: RESHAPE_CLASSES.has(n.op),
      elementwise: ELEMENTWISE_CLASSES.has(n.op) && feature === 1,
      norm: NORM_CLASSES.has(n.op),
      layer: true,
      block: n.block,
      residualUnit: n.block,
    };
  });
}

/** The head's input: back from the output through softmax/reshape/activations to a Dense (or MatMul) layer, then its input. */
function headInput(nodes: readonly SelectionNode[], output: SelectionNode | undefined): string | null {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let n = output;
  for (let guard = 0; n && HEAD_PASS.has(n.op) && n.inputs.length === 1 && guard < nodes.length; guard++) n = byId.get(n.inputs[0]!);
  if (!n || !HEAD_LINEAR.has(n.op) || n.inputs.length !== 1) return null;
  // Dropout and Identity hand on the same values: the features are the layer before them.
  let src = byId.get(n.inputs[0]!);
  while (src && VALUE_PRESERVING.has(src.op) && src.inputs.length === 1 && byId.has(src.inputs[0]!)) src = byId.get(src.inputs[0]!);
  return src?.id ?? n.inputs[0]!;
}

/** The default layers of a TF.js layers or graph model (rule in default-layers.ts). */
export function defaultSelection(nodes: readonly SelectionNode[]): Set<string> {
  const sequential = sequentialSelection(nodes);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const output = [...nodes].reverse().find((n) => n.isOutput);
  if (!output) return sequential;
  const headStack = new Set([...sequential].filter((id) => byId.get(id)!.pool || byId.get(id)!.rank <= 2));
  return chooseDefaultLayers(dagNodes(nodes), { input: INPUT, output: output.id, headInput: headInput(nodes, output), sequential, headStack }).selected;
}

/** Longest-path depth of each node in weighted layers (parallel branches share a depth). */
export function layerDepths(nodes: readonly SelectionNode[]): Map<string, number> {
  return graphDepths(dagNodes(nodes), INPUT);
}
