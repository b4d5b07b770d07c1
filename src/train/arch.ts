/**
 * The three reference architectures, built with the TF.js functional API from seeded
 * initialisers. Layer names are fixed (not TF.js's global counters) so that layer ids are the
 * same in every model.json, in the exported ONNX graph, and across runs of one process.
 */
import type * as tfTypes from '../runtime/tf-types.js';
import { UsageError } from '../errors.js';
import type { Tf } from '../runtime/backend.js';
import { registerVitLayers } from '../runtime/tfjs-layers/vit-layers.js';

type LayersModel = tfTypes.LayersModel;
type SymbolicTensor = tfTypes.SymbolicTensor;
type ActivationIdentifier = NonNullable<Parameters<Tf['layers']['dense']>[0]['activation']>;

export const ARCHS = ['mlp', 'cnn', 'vit'] as const;
export type Arch = (typeof ARCHS)[number];

/** Hidden activations the exporter can write to ONNX as well. */
export const ACTIVATIONS = ['relu', 'tanh', 'sigmoid', 'elu', 'selu', 'gelu', 'softplus', 'linear'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export interface ArchOptions {
  /** MLP: units per hidden layer. CNN: filters of the first conv (doubling per block). ViT: token width. */
  width: number;
  /** MLP: hidden layers. CNN: conv+pool blocks. ViT: transformer blocks. */
  depth: number;
  activation: Activation;
  /** ViT only. */
  heads: number;
  /** ViT only: square patch side; must divide the image size. */
  patch: number;
}

export const ARCH_DEFAULTS: Record<Arch, ArchOptions> = {
  mlp: { width: 256, depth: 2, activation: 'relu', heads: 0, patch: 0 },
  cnn: { width: 32, depth: 2, activation: 'relu', heads: 0, patch: 0 },
  vit: { width: 64, depth: 4, activation: 'gelu', heads: 4, patch: 7 },
};

export function isArch(s: string): s is Arch {
  return (ARCHS as readonly string[]).includes(s);
}

export function isActivation(s: string): s is Activation {
  return (ACTIVATIONS as readonly string[]).includes(s);
}

export function checkArchOptions(arch: Arch, o: ArchOptions, itemShape: readonly [number, number, number]): void {
  const posInt = (v: number, flag: string): void => {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${flag} must be a positive integer (got ${v})`);
  };
  posInt(o.width, 'width');
  posInt(o.depth, 'depth');
  if (!isActivation(o.activation)) throw new UsageError(`unknown --activation \`${o.activation}\` (use one of ${ACTIVATIONS.join(', ')})`);
  const [h, w] = itemShape;
  if (arch === 'cnn') {
    let side = Math.min(h, w);
    for (let i = 0; i < o.depth; i++) side = Math.floor((side - 2) / 2);
    if (side < 1) throw new UsageError(`--depth ${o.depth} is too deep for ${h}×${w} images (each CNN block shrinks them to (s−2)/2)`);
  }
  if (arch === 'vit') {
    if (o.activation !== 'gelu') throw new UsageError('the ViT blocks use GELU; leave --activation out for --arch vit');
    posInt(o.heads, 'heads');
    posInt(o.patch, 'patch');
    if (o.width % o.heads !== 0) throw new UsageError(`--width ${o.width} must be divisible by the ${o.heads} attention heads`);
    if (h % o.patch !== 0 || w % o.patch !== 0) throw new UsageError(`--patch ${o.patch} must divide the image size ${h}×${w}`);
  }
}

/** One seed per weight-bearing layer, derived from the run seed. */
function seeder(seed: number): () => number {
  let k = 0;
  return () => (Math.abs(Math.trunc(seed)) % 100_000) * 1000 + ++k;
}

export function buildModel(tf: Tf, arch: Arch, o: ArchOptions, itemShape: readonly [number, number, number], numClasses: number, seed: number): LayersModel {
  const next = seeder(seed);
  const glorot = (): ReturnType<Tf['initializers']['glorotUniform']> => tf.initializers.glorotUniform({ seed: next() });
  const input = tf.input({ shape: [...itemShape], name: 'image' });
  const act = o.activation as ActivationIdentifier;
  let x: SymbolicTensor;
  const apply = (layer: tfTypes.layers.Layer, t: SymbolicTensor): SymbolicTensor => layer.apply(t) as SymbolicTensor;

  if (arch === 'mlp') {
    x = apply(tf.layers.flatten({ name: 'flatten' }), input);
    for (let i = 1; i <= o.depth; i++) {
      x = apply(tf.layers.dense({ units: o.width, activation: act, kernelInitializer: glorot(), name: `dense_${i}` }), x);
    }
  } else if (arch === 'cnn') {
    x = input;
    for (let i = 1; i <= o.depth; i++) {
      const filters = o.width * 2 ** (i - 1);
      x = apply(tf.layers.conv2d({ filters, kernelSize: 3, activation: act, kernelInitializer: glorot(), name: `conv_${i}` }), x);
      x = apply(tf.layers.maxPooling2d({ poolSize: 2, name: `pool_${i}` }), x);
    }
    x = apply(tf.layers.flatten({ name: 'flatten' }), x);
    x = apply(tf.layers.dense({ units: 4 * o.width, activation: act, kernelInitializer: glorot(), name: 'dense_1' }), x);
  } else {
    const { ClassToken, PositionEmbedding, TransformerBlock, ClassTokenSelect } = registerVitLayers(tf);
    const [h, w, c] = itemShape;
    const p = o.patch;
    const [gh, gw] = [h / p, w / p];
    // [h,w,c] → [gh,p,gw,p·c] → [gh,gw,p,p·c] → [gh·gw, p·p·c]: row-major patches, each row-major.
    x = apply(tf.layers.reshape({ targetShape: [gh, p, gw, p * c], name: 'patch_grid' }), input);
    x = apply(tf.layers.permute({ dims: [1, 3, 2, 4], name: 'patch_order' }), x);
    x = apply(tf.layers.reshape({ targetShape: [gh * gw, p * p * c], name: 'patches' }), x);
    x = apply(tf.layers.dense({ units: o.width, kernelInitializer: glorot(), name: 'patch_embed' }), x);
    x = apply(new ClassToken({ name: 'cls_token', seed: next() }), x);
    x = apply(new PositionEmbedding({ name: 'pos_embed', seed: next() }), x);
    for (let i = 1; i <= o.depth; i++) {
      x = apply(new TransformerBlock({ name: `block_${i}`, numHeads: o.heads, mlpDim: 2 * o.width, seed: next() }), x);
    }
    x = apply(tf.layers.layerNormalization({ epsilon: 1e-6, name: 'final_norm' }), x);
    x = apply(new ClassTokenSelect({ name: 'cls' }), x);
  }
  const logits = apply(tf.layers.dense({ units: numClasses, kernelInitializer: glorot(), name: 'logits' }), x);
  return tf.model({ inputs: input, outputs: logits, name: `layerprobe-${arch}` });
}

/** One line per layer for the model card: `conv_1 Conv2D [26,26,32] (320 params)`. */
export function describeLayers(model: LayersModel): { name: string; className: string; outputShape: (number | null)[]; params: number }[] {
  return model.layers
    .filter((l) => l.getClassName() !== 'InputLayer')
    .map((l) => {
      const shape = l.outputShape as (number | null)[];
      return { name: l.name, className: l.getClassName(), outputShape: shape.slice(1), params: l.countParams() };
    });
}
