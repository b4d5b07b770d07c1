/**
 * TF.js assembled from the packages layerprobe depends on — tfjs-core, tfjs-layers,
 * tfjs-converter and the cpu backend — as the `@tensorflow/tfjs` umbrella assembles them, without
 * the umbrella's WebGL backend, tfjs-data and core-js (~190 MB of an install, never loaded in Node).
 * Gradients and chained methods come from vendor/ (see scripts/bundle-tfjs.ts).
 * One frozen object per process: it keys the ViT layer registration (vit-layers.ts) and is what
 * loadTf() hands out when tfjs-node is absent. The parts are CommonJS; their module namespaces
 * carry the named exports, and all three share the one tfjs-core engine and registries.
 */
import * as core from '@tensorflow/tfjs-core';
import * as layers from '@tensorflow/tfjs-layers';
import * as converter from '@tensorflow/tfjs-converter';
// Registers the cpu backend: the fallback, and the kernels the wasm backend delegates to.
import '@tensorflow/tfjs-backend-cpu';
// Gradients and Tensor's chained methods, bundled from tfjs-core by scripts/bundle-tfjs.ts (after
// tfjs-core itself, so that its engine is the one they join).
import '../../vendor/tfjs-registrations.js';
import type { Tf } from './tf-types.js';

export const tf: Tf = Object.freeze({ ...core, ...layers, ...converter });
