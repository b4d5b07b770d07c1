/**
 * TF.js layers model → ONNX (opset 17, symbolic batch `N`), in memory. Layer ids carry over: each
 * layer's output tensor in the ONNX graph is named exactly like the TF.js layer, the input keeps
 * the TF.js input's name and NHWC layout, and 4-D feature maps are NCHW inside the graph (see
 * onnx-context.ts). The default layers of the TF.js model are written into the model's metadata
 * (`layerprobe.default_layers`), since ONNX alone cannot mark a transformer block. Used by the
 * `export` command (export/onnx-export.ts) and by the onnx engine for TF.js models
 * (runtime/tfjs-onnx/engine.ts); `compareRunners` is the agreement check both use.
 */
import onnxProto from 'onnx-proto';
import type * as tfTypes from '../tf-types.js';
import { RuntimeFailure } from '../../errors.js';
import { OnnxGraphBuilder } from '../onnx-build.js';
import type { ModelRunner } from '../types.js';
import { layerprobeVersion } from '../../util/versions.js';
import { BUILTIN_CONVERTERS, unsupported, type Config, type Converter, type Layer, type LayerInput } from './layer-converters.js';
import { ExportContext, type Value } from './onnx-context.js';
import { VIT_CONVERTERS } from './vit-ops.js';

type LayersModel = tfTypes.LayersModel;
type SymbolicTensor = tfTypes.SymbolicTensor;

export const ONNX_OPSET = 17;
export const DEFAULT_LAYERS_KEY = 'layerprobe.default_layers';

const CONVERTERS: Record<string, Converter> = { ...BUILTIN_CONVERTERS, ...VIT_CONVERTERS };

export function exportableLayerClasses(): string[] {
  return Object.keys(CONVERTERS).sort();
}

export interface ConvertOptions {
  /** Layer ids written to the metadata as the default selection. */
  defaultLayers?: readonly string[];
  graphName?: string;
}

function inboundTensors(layer: Layer): SymbolicTensor[] {
  if (layer.inboundNodes.length !== 1) {
    throw unsupported(layer, `it is used ${layer.inboundNodes.length} times in the model (shared layers are not supported)`);
  }
  return layer.inboundNodes[0]!.inputTensors;
}

/** Converts an in-memory layers model; returns the ModelProto bytes. */
export async function layersModelToOnnx(model: LayersModel, opts: ConvertOptions = {}): Promise<Uint8Array> {
  if (model.inputs.length !== 1) throw new RuntimeFailure(`cannot export a model with ${model.inputs.length} inputs to ONNX (one is supported)`);
  const ctx = new ExportContext();
  const values = new Map<number, Value>();
  const input = model.inputs[0]!;
  const inShape: (number | null)[] = [...input.shape];
  inShape[0] = null;
  const inputName = ctx.reserve(input.sourceLayer.name);
  values.set(input.id, { name: inputName, shape: inShape, nchw: false });

  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') continue;
    const convert = CONVERTERS[cls];
    if (!convert) {
      throw new RuntimeFailure(
        `cannot export layer \`${layer.name}\` to ONNX: layer class ${cls} is not supported`,
        `supported layer classes: ${exportableLayerClasses().join(', ')}`,
      );
    }
    const inputs = inboundTensors(layer).map((t) => {
      const v = values.get(t.id);
      if (!v) throw unsupported(layer, `its input from \`${t.sourceLayer.name}\` was not converted before it`);
      return v;
    });
    const weights = await Promise.all(
      layer.weights.map(async (w) => ({ name: w.originalName, data: Float32Array.from(await w.read().data()), shape: [...w.shape] as number[] })),
    );
    const outTensors = layer.inboundNodes[0]!.outputTensors;
    if (outTensors.length !== 1) throw unsupported(layer, `it has ${outTensors.length} outputs`);
    const outShape: (number | null)[] = [...outTensors[0]!.shape];
    outShape[0] = null;
    const li: LayerInput = { layer, config: layer.getConfig() as Config, inputs, weights, outShape };
    const out = convert(ctx, li);
    if (out.name !== layer.name) throw new Error(`converter for ${cls} did not name its output \`${layer.name}\``);
    values.set(outTensors[0]!.id, out);
  }

  const b = new OnnxGraphBuilder(opts.graphName ?? model.name);
  b.input(inputName, ['N', ...(inShape.slice(1) as number[])]);
  for (const init of ctx.initializers) b.initializer(init.name, init.data, init.dims);
  for (const n of ctx.nodes) b.node(n.op, n.inputs, n.outputs, n.attrs);
  for (const o of model.outputs) {
    const v = values.get(o.id);
    if (!v) throw new RuntimeFailure(`model output \`${o.sourceLayer.name}\` was not produced by the conversion`);
    const shape = v.nchw ? [v.shape[0], v.shape[3], v.shape[1], v.shape[2]] : v.shape;
    b.output(v.name, ['N', ...shape.slice(1)]);
  }
  const proto = b.toModel(ONNX_OPSET);
  proto.producerVersion = layerprobeVersion();
  proto.docString = 'Exported from a TF.js layers model by layerprobe. Input NHWC; 4-D layer outputs NCHW; layer outputs named as the TF.js layers.';
  proto.metadataProps = [
    onnxProto.onnx.StringStringEntryProto.create({ key: DEFAULT_LAYERS_KEY, value: JSON.stringify(opts.defaultLayers ?? []) }),
    onnxProto.onnx.StringStringEntryProto.create({ key: 'layerprobe.input_layout', value: 'NHWC' }),
    onnxProto.onnx.StringStringEntryProto.create({ key: 'layerprobe.feature_layout_4d', value: 'NCHW' }),
  ];
  return onnxProto.onnx.ModelProto.encode(proto).finish();
}

/** Per-sample data in NHWC from NCHW, for comparing a 4-D ONNX layer with its TF.js twin. */
export function nchwToNhwc(data: Float32Array, shape: readonly number[]): Float32Array {
  const [n, c, h, w] = shape as [number, number, number, number];
  const out = new Float32Array(data.length);
  for (let s = 0; s < n; s++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((s * h + y) * w + x) * c + ch] = data[((s * c + ch) * h + y) * w + x]!;
  return out;
}

/** Max |a − b| over every layer both runners expose, after undoing the NCHW storage of 4-D ONNX maps. */
export async function compareRunners(tfr: ModelRunner, ort: ModelRunner, input: { data: Float32Array; shape: number[] }): Promise<{ maxAbsDiff: number; worst: string; layers: string[] }> {
  const onnxLayout = new Map(ort.layers().map((l) => [l.id, l.layout]));
  const tfLayout = new Map(tfr.layers().map((l) => [l.id, l.layout]));
  const shared = [...tfLayout.keys()].filter((id) => onnxLayout.has(id));
  const [a, b] = await Promise.all([tfr.run(input, shared), ort.run(input, shared)]);
  let maxAbsDiff = 0;
  let worst = '';
  for (const id of shared) {
    const ta = a.get(id)!;
    const tb = b.get(id)!;
    const transposed = onnxLayout.get(id) === 'NCHW' && tfLayout.get(id) === 'NHWC';
    const other = transposed ? nchwToNhwc(tb.data, tb.shape) : tb.data;
    if (other.length !== ta.data.length) throw new RuntimeFailure(`layer \`${id}\` has ${ta.data.length} values in TF.js but ${other.length} in ONNX`);
    for (let i = 0; i < other.length; i++) {
      const d = Math.abs(other[i]! - ta.data[i]!);
      if (!(d <= maxAbsDiff)) {
        maxAbsDiff = Number.isNaN(d) ? Infinity : d;
        worst = id;
      }
    }
  }
  return { maxAbsDiff, worst, layers: shared };
}

