/**
 * Benchmark models with the shapes the issue names (a 4×512 MLP and a small CNN for 28×28
 * inputs), built with seeded He-initialised weights: throughput and memory do not depend on
 * whether the weights were trained.
 */
import { writeFile } from 'node:fs/promises';
import { OnnxGraphBuilder } from '../src/runtime/onnx-build.js';
import { Rng } from '../src/util/rng.js';

function he(rng: Rng, fanIn: number, count: number): Float32Array {
  const s = Math.sqrt(2 / fanIn);
  return Float32Array.from({ length: count }, () => rng.normal() * s);
}

export async function writeBenchMlp(file: string, width = 512, depth = 4): Promise<void> {
  const rng = new Rng(7);
  const g = new OnnxGraphBuilder();
  g.input('image', ['N', 1, 28, 28]);
  g.node('Flatten', ['image'], ['flat'], { axis: 1 });
  let prev = 'flat';
  let fanIn = 784;
  for (let l = 1; l <= depth; l++) {
    g.initializer(`w${l}`, he(rng, fanIn, fanIn * width), [fanIn, width]);
    g.initializer(`b${l}`, new Float32Array(width), [width]);
    g.node('Gemm', [prev, `w${l}`, `b${l}`], [`fc${l}`]);
    g.node('Relu', [`fc${l}`], [`relu${l}`]);
    prev = `relu${l}`;
    fanIn = width;
  }
  g.initializer('wo', he(rng, fanIn, fanIn * 10), [fanIn, 10]);
  g.initializer('bo', new Float32Array(10), [10]);
  g.node('Gemm', [prev, 'wo', 'bo'], ['logits']);
  g.output('logits', ['N', 10]);
  await writeFile(file, g.toBytes(13));
}

export async function writeBenchCnn(file: string): Promise<void> {
  const rng = new Rng(8);
  const g = new OnnxGraphBuilder();
  g.input('image', ['N', 1, 28, 28]);
  g.initializer('k1', he(rng, 9, 16 * 9), [16, 1, 3, 3]);
  g.initializer('c1b', new Float32Array(16), [16]);
  g.node('Conv', ['image', 'k1', 'c1b'], ['conv1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  g.node('Relu', ['conv1'], ['relu1']);
  g.node('MaxPool', ['relu1'], ['pool1'], { kernel_shape: [2, 2], strides: [2, 2] });
  g.initializer('k2', he(rng, 144, 32 * 144), [32, 16, 3, 3]);
  g.initializer('c2b', new Float32Array(32), [32]);
  g.node('Conv', ['pool1', 'k2', 'c2b'], ['conv2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  g.node('Relu', ['conv2'], ['relu2']);
  g.node('MaxPool', ['relu2'], ['pool2'], { kernel_shape: [2, 2], strides: [2, 2] });
  g.node('Flatten', ['pool2'], ['flat'], { axis: 1 });
  g.initializer('w3', he(rng, 1568, 1568 * 128), [1568, 128]);
  g.initializer('b3', new Float32Array(128), [128]);
  g.node('Gemm', ['flat', 'w3', 'b3'], ['fc3']);
  g.node('Relu', ['fc3'], ['relu3']);
  g.initializer('wo', he(rng, 128, 1280), [128, 10]);
  g.initializer('bo', new Float32Array(10), [10]);
  g.node('Gemm', ['relu3', 'wo', 'bo'], ['logits']);
  g.output('logits', ['N', 10]);
  await writeFile(file, g.toBytes(13));
}
