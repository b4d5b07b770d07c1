/**
 * Which TF.js layers / graph nodes a probe looks at when the user names none: the hidden
 * representation after each nonlinearity, one per block. Kept apart from the runners so the rule
 * is written once for layers and graph models and can be read (and tested) without TF.js.
 */

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

export interface SelectionNode {
  id: string;
  /** Ids of the listed nodes feeding this one (data inputs only). */
  inputs: readonly string[];
  activated: boolean;
  pool: boolean;
  block: boolean;
  isOutput: boolean;
}

/**
 * Hidden nonlinearity outputs, pooling outputs and block outputs, never the model output. A pool
 * that directly consumes an activation (its only consumer) replaces it, so each conv block counts once.
 */
export function defaultSelection(nodes: readonly SelectionNode[]): Set<string> {
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
