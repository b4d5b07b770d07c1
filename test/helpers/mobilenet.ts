/**
 * A MobileNetV2 (Sandler et al. 2018, the Keras application's layout: inverted residual blocks of
 * 1×1 expand → BN → ReLU6 → 3×3 depthwise → BN → ReLU6 → 1×1 project → BN, residual Add where
 * shapes allow, ZeroPadding before strided depthwise convs) built with the TF.js layers API and
 * saved as a layers model. Weights are seeded random, and the batch-norm statistics too, so every
 * BN does real work: speed, memory and conversion agreement do not depend on training.
 * `stages` keeps only the first stages of the (t, c, n, s) table, for small test models.
 */
import type * as tfTypes from '../../src/runtime/tf-types.js';
import type { Tf } from '../../src/runtime/backend.js';
import { saveToDir } from '../../src/runtime/tfjs-io.js';
import { Rng } from '../../src/util/rng.js';


export interface MobileNetOptions {
  size: number;
  alpha?: number;
  classes?: number;
  /** How many rows of the (t, c, n, s) table to build (default all 7). */
  stages?: number;
  seed?: number;
}

const TABLE: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

function divisible(v: number, d = 8): number {
  const n = Math.max(d, Math.floor((v + d / 2) / d) * d);
  return n < 0.9 * v ? n + d : n;
}

export function buildMobileNetV2(tf: Tf, o: MobileNetOptions): tfTypes.LayersModel {
  const alpha = o.alpha ?? 1;
  const input = tf.input({ shape: [o.size, o.size, 3], name: 'image' });
  let x = tf.layers.conv2d({ filters: divisible(32 * alpha), kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1' }).apply(input) as tfTypes.SymbolicTensor;
  x = tf.layers.batchNormalization({ epsilon: 1e-3, name: 'bn_Conv1' }).apply(x) as tfTypes.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6, name: 'Conv1_relu' }).apply(x) as tfTypes.SymbolicTensor;
  let inC = divisible(32 * alpha);
  let block = 0;
  for (const [t, c, n, s] of TABLE.slice(0, o.stages ?? TABLE.length)) {
    const outC = divisible(c * alpha);
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const p = `block_${block}_`;
      let h = x;
      if (t !== 1) {
        h = tf.layers.conv2d({ filters: inC * t, kernelSize: 1, useBias: false, name: `${p}expand` }).apply(h) as tfTypes.SymbolicTensor;
        h = tf.layers.batchNormalization({ epsilon: 1e-3, name: `${p}expand_BN` }).apply(h) as tfTypes.SymbolicTensor;
        h = tf.layers.reLU({ maxValue: 6, name: `${p}expand_relu` }).apply(h) as tfTypes.SymbolicTensor;
      }
      if (stride === 2) h = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: `${p}pad` }).apply(h) as tfTypes.SymbolicTensor;
      h = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: stride === 2 ? 'valid' : 'same', useBias: false, name: `${p}depthwise` }).apply(h) as tfTypes.SymbolicTensor;
      h = tf.layers.batchNormalization({ epsilon: 1e-3, name: `${p}depthwise_BN` }).apply(h) as tfTypes.SymbolicTensor;
      h = tf.layers.reLU({ maxValue: 6, name: `${p}depthwise_relu` }).apply(h) as tfTypes.SymbolicTensor;
      h = tf.layers.conv2d({ filters: outC, kernelSize: 1, useBias: false, name: `${p}project` }).apply(h) as tfTypes.SymbolicTensor;
      h = tf.layers.batchNormalization({ epsilon: 1e-3, name: `${p}project_BN` }).apply(h) as tfTypes.SymbolicTensor;
      x = stride === 1 && inC === outC ? (tf.layers.add({ name: `${p}add` }).apply([x, h]) as tfTypes.SymbolicTensor) : h;
      inC = outC;
      block++;
    }
  }
  const last = alpha > 1 ? divisible(1280 * alpha) : 1280;
  x = tf.layers.conv2d({ filters: last, kernelSize: 1, useBias: false, name: 'Conv_1' }).apply(x) as tfTypes.SymbolicTensor;
  x = tf.layers.batchNormalization({ epsilon: 1e-3, name: 'Conv_1_bn' }).apply(x) as tfTypes.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6, name: 'out_relu' }).apply(x) as tfTypes.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as tfTypes.SymbolicTensor;
  const out = tf.layers.dense({ units: o.classes ?? 1000, activation: 'softmax', name: 'predictions' }).apply(x) as tfTypes.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out, name: 'mobilenetv2' });
  // Seeded weights: He-scaled kernels, batch norms with spread-out statistics.
  const rng = new Rng(o.seed ?? 1);
  const weights = model.weights.map((w) => {
    const shape = w.shape as number[];
    const count = shape.reduce((a, b) => a * b, 1);
    const name = w.originalName;
    let data: Float32Array;
    if (/moving_variance$/.test(name)) data = Float32Array.from({ length: count }, () => 0.5 + rng.next());
    else if (/moving_mean$|beta$/.test(name)) data = Float32Array.from({ length: count }, () => 0.1 * rng.normal());
    else if (/gamma$/.test(name)) data = Float32Array.from({ length: count }, () => 0.8 + 0.4 * rng.next());
    else if (/bias$/.test(name)) data = new Float32Array(count);
    else {
      const fanIn = shape.length === 4 ? shape[0]! * shape[1]! * (/depthwise/.test(name) ? 1 : shape[2]!) : shape[0]!;
      const s = Math.sqrt(2 / fanIn);
      data = Float32Array.from({ length: count }, () => rng.normal() * s);
    }
    return tf.tensor(data, shape);
  });
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

/** Builds the model and writes model.json + weights into `dir`. */
export async function writeMobileNetV2(tf: Tf, dir: string, o: MobileNetOptions): Promise<string> {
  const model = buildMobileNetV2(tf, o);
  await model.save(saveToDir(dir));
  model.dispose();
  return `${dir}/model.json`;
}
