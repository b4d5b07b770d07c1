/** One model, one interface: what the rest of layerprobe sees of ONNX and TF.js models alike. */
import type { LayersModel } from './tf-types.js';

/** Memory layout of a layer's per-sample tensor, so reductions know where channels/tokens are. */
export type LayerLayout = 'NC' | 'NCHW' | 'NHWC' | 'NTD' | 'other';

export interface LayerInfo {
  /** Stable id used on the command line: ONNX tensor name, or TF.js layer name (node name for graph models). */
  id: string;
  /** Producing op / layer class: 'Relu', 'Conv', 'MaxPool', 'Dense', 'Conv2D', … */
  op: string;
  /** Per-sample shape with the batch dimension first as null, e.g. [null, 10, 12, 12]. */
  shape: (number | null)[];
  kind: 'dense' | 'conv' | 'tokens' | 'other';
  layout: LayerLayout;
  /** Topological order among all layers, 0-based. */
  index: number;
  /** Whether the default selection (outputs of hidden layers after their nonlinearity) includes it. */
  defaultSelected: boolean;
  /** True for the model's final output (logits / probabilities). */
  isOutput: boolean;
  /** The layer's own activation where the op does not name it (a TF.js Dense or Conv2D `activation`, e.g. 'tanh'); absent for linear. */
  activation?: string;
  /** Longest-path depth from the input in weighted layers (parallel branches share it); absent where unknown. */
  depth?: number;
}

export interface LayerTensor {
  data: Float32Array;
  /** [n, ...per-sample shape]. */
  shape: number[];
}

export interface ModelRunner {
  readonly format: 'onnx' | 'tfjs-layers' | 'tfjs-graph';
  readonly path: string;
  /** Per-sample input shape with batch first as null, e.g. [null, 1, 28, 28]; null dims are free. */
  readonly inputShape: (number | null)[];
  /** Backend that executes the model, for the manifest ('onnxruntime-node cpu', 'tfjs wasm', …). */
  readonly backend: string;
  /** Every probe-able tensor in topological order; the output(s) included with isOutput. */
  layers(): LayerInfo[];
  /** Run one batch and return the requested layers (by id), each [n, ...]. */
  run(input: { data: Float32Array; shape: number[] }, layerIds: readonly string[]): Promise<Map<string, LayerTensor>>;
  dispose(): Promise<void>;
  /**
   * Capability: the final linear layer that produces the class scores, read from the model
   * (runtime/classifier-head.ts). Rejects with a RuntimeFailure saying why when the model has none
   * or its format cannot tell. `label` names the model in messages (default: its path).
   */
  classifierHead(label?: string): Promise<ClassifierHead>;
  /**
   * Capability: the TF.js layers model behind the runner, which export/ converts to ONNX; null
   * for formats that cannot be exported (ONNX itself, TF.js graph models).
   */
  exportableLayersModel(): LayersModel | null;
  /**
   * How the model is run, where the user should know (a TF.js model that could not run on
   * onnxruntime, and why: runtime/tfjs-onnx/engine.ts); absent or empty when there is nothing to say.
   */
  warnings?(): string[];
}

export interface ClassifierHead {
  /** K×d, row y = the weights of class y. */
  W: Float64Array;
  bias: Float64Array | null;
  K: number;
  d: number;
  /** Layer id (as the runner lists it) of the head's input features, when known. */
  inputLayer: string | null;
  /** Layer id of the head's output (logits or probabilities). */
  outputLayer: string;
  /** What the head is: `Gemm logits/kernel`, `Dense logits`, … */
  description: string;
}

/** Values per sample of a batch-first shape such as [null, 10, 12, 12] (free dims count as 1). */
export function valuesPerItem(shape: readonly (number | null)[]): number {
  return shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
}
