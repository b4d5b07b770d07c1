/**
 * TF.js layers models (Keras-style topology) behind ModelRunner: intermediate tensors come from a
 * sub-model whose outputs are the requested layers, so every requested layer comes out of one
 * forward pass. Importing this module registers layerprobe's custom layers (the ViT pieces) so
 * that models naming them load.
 */
import type * as tfTypes from './tf-types.js';
import { RuntimeFailure } from '../errors.js';
import type { Tf } from './backend.js';
import {
  POOLING_LAYER_CLASSES,
  TRANSFORMER_BLOCK_CLASSES,
  defaultSelection,
  layerDepths,
  layerIsActivated,
  type SelectionNode,
} from './tfjs-default-layers.js';
import './tfjs-layers/register.js';
import { layersModelHead } from './classifier-head.js';
import type { ClassifierHead, LayerInfo } from './types.js';
import { TfjsRunner, firstLine } from './tfjs-runner.js';
import { kindAndLayout } from './layer-kind.js';
import { bounded, boundedAsync } from '../util/watchdog.js';

type Tensor = tfTypes.Tensor;
type LayersModel = tfTypes.LayersModel;
type SymbolicTensor = tfTypes.SymbolicTensor;
type Layer = LayersModel['layers'][number];
type ModelArtifacts = tfTypes.io.ModelArtifacts;

interface LayerEntry {
  info: LayerInfo;
  tensor: SymbolicTensor;
}

function layerOutputs(layer: Layer): SymbolicTensor[] {
  let out: SymbolicTensor | SymbolicTensor[];
  try {
    out = layer.output;
  } catch {
    // Shared layers have several inbound nodes; the first is the one this model was built from.
    out = layer.inboundNodes[0]?.outputTensors ?? [];
  }
  return Array.isArray(out) ? out : [out];
}

function tensorKey(t: SymbolicTensor): string {
  return `${t.sourceLayer.name}#${t.outputTensorIndex ?? 0}`;
}

export class TfjsLayersRunner extends TfjsRunner {
  readonly format = 'tfjs-layers' as const;
  private readonly entries: Map<string, LayerEntry>;
  /** Sub-models per requested id set; they share the layers (and weights) of the main model. */
  private readonly submodels = new Map<string, LayersModel>();

  private constructor(tf: Tf, backend: string, file: string, readonly layersModel: LayersModel, entries: LayerEntry[]) {
    const inShape = [...layersModel.inputs[0]!.shape];
    inShape[0] = null;
    super(tf, backend, file, inShape, entries.map((e) => e.info));
    this.entries = new Map(entries.map((e) => [e.info.id, e]));
  }

  static async create(tf: Tf, backend: string, file: string, artifacts: ModelArtifacts): Promise<TfjsLayersRunner> {
    let model: LayersModel;
    try {
      model = await boundedAsync(`loading TF.js model \`${file}\``, () => tf.loadLayersModel({ load: async () => artifacts }));
    } catch (e) {
      // TF.js follows "Unknown layer: X." with a list of generic reasons; the name is the news.
      const unknown = /^Unknown layer: ([^.\s]+)/.exec(firstLine(e));
      if (unknown) {
        throw new RuntimeFailure(
          `cannot load TF.js layers model \`${file}\`: it uses layer class \`${unknown[1]}\`, which TF.js does not know`,
          'a custom layer of the training code; convert the model without it, or export it to ONNX and audit that',
        );
      }
      throw new RuntimeFailure(`cannot load TF.js layers model \`${file}\`: ${firstLine(e)}`);
    }
    if (model.inputs.length !== 1) {
      model.dispose();
      throw new RuntimeFailure(`\`${file}\` has ${model.inputs.length} inputs; layerprobe runs single-input models`);
    }
    return new TfjsLayersRunner(tf, backend, file, model, TfjsLayersRunner.describe(model));
  }

  private static describe(model: LayersModel): LayerEntry[] {
    const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
    const outputKeys = new Set(model.outputs.map(tensorKey));
    const raw: { layer: Layer; id: string; tensor: SymbolicTensor }[] = [];
    for (const layer of layers) {
      const outs = layerOutputs(layer);
      outs.forEach((t, k) => raw.push({ layer, id: outs.length === 1 ? layer.name : `${layer.name}:${k}`, tensor: t }));
    }
    // Converted LeNets list every layer as an output; the classifier is the last one, the rest are hidden.
    let outputIdx = -1;
    raw.forEach((r, i) => {
      if (outputKeys.has(tensorKey(r.tensor))) outputIdx = i;
    });

    const layout4 = new Map<string, 'NHWC' | 'NCHW'>();
    const inboundOf = (layer: Layer): string[] => (layer.inboundNodes[0]?.inboundLayers ?? []).map((l) => l.name);
    const entries: LayerEntry[] = raw.map((r, index) => {
      const config = r.layer.getConfig() as Record<string, unknown>;
      const shape: (number | null)[] = [...r.tensor.shape];
      shape[0] = null;
      let l4: 'NHWC' | 'NCHW' = 'NHWC';
      if (config.data_format === 'channels_first') l4 = 'NCHW';
      else if (config.data_format === undefined) l4 = layout4.get(inboundOf(r.layer)[0] ?? '') ?? 'NHWC';
      if (shape.length === 4) layout4.set(r.layer.name, l4);
      return {
        tensor: r.tensor,
        info: {
          id: r.id,
          op: r.layer.getClassName(),
          ...(typeof config.activation === 'string' && config.activation !== 'linear' ? { activation: config.activation } : {}),
          shape,
          ...kindAndLayout(shape, l4),
          index,
          defaultSelected: false,
          isOutput: index === outputIdx,
        },
      };
    });

    const listed = new Set(raw.map((r) => r.layer.name));
    const nodes: SelectionNode[] = raw
      .filter((r) => r.id === r.layer.name)
      .map((r) => {
        const cls = r.layer.getClassName();
        return {
          id: r.id,
          op: cls,
          rank: r.tensor.shape.length,
          inputs: inboundOf(r.layer).filter((n) => listed.has(n)),
          activated: layerIsActivated(cls, r.layer.getConfig() as Record<string, unknown>),
          pool: POOLING_LAYER_CLASSES.has(cls),
          block: TRANSFORMER_BLOCK_CLASSES.has(cls),
          isOutput: raw[outputIdx]?.id === r.id,
        };
      });
    const selected = defaultSelection(nodes);
    const depths = layerDepths(nodes);
    for (const e of entries) [e.info.defaultSelected, e.info.depth] = [selected.has(e.info.id), depths.get(e.info.id)];
    return entries;
  }

  private submodel(ids: readonly string[]): LayersModel {
    const key = JSON.stringify(ids);
    let sub = this.submodels.get(key);
    if (!sub) {
      sub = bounded(`building a sub-model of \`${this.path}\``, () => this.tf.model({ inputs: this.layersModel.inputs, outputs: ids.map((id) => this.entries.get(id)!.tensor) }));
      // Sub-models own no tensors, so dropping the oldest only frees a little JS.
      if (this.submodels.size >= 32) this.submodels.delete(this.submodels.keys().next().value!);
      this.submodels.set(key, sub);
    }
    return sub;
  }

  protected async execute(x: Tensor, ids: readonly string[]): Promise<Tensor[]> {
    const sub = this.submodel(ids);
    const tf = this.tf;
    return tf.tidy(() => {
      const out = sub.predict(x, { batchSize: x.shape[0] });
      return (Array.isArray(out) ? out : [out]).map((t) => (t.dtype === 'float32' ? t : t.cast('float32')));
    });
  }

  async classifierHead(label = this.path): Promise<ClassifierHead> {
    return layersModelHead(this, label);
  }

  exportableLayersModel(): LayersModel {
    return this.layersModel;
  }

  async dispose(): Promise<void> {
    this.submodels.clear();
    this.layersModel.dispose();
  }
}

