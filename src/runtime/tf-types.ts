/**
 * The TF.js types layerprobe uses, from the packages it depends on (tfjs-core, tfjs-layers,
 * tfjs-converter) rather than the `@tensorflow/tfjs` umbrella, which would also install the WebGL
 * backend, tfjs-data and core-js that a Node program never loads. Type-only: erased at run time;
 * the values come from loadTf() (backend.ts).
 */
import type * as Core from '@tensorflow/tfjs-core';
import type * as Layers from '@tensorflow/tfjs-layers';
import type * as Converter from '@tensorflow/tfjs-converter';

/** The TF.js namespace: what `@tensorflow/tfjs` re-exports from the three packages. */
export type Tf = Omit<typeof Core, 'default'> & Omit<typeof Layers, 'default'> & Omit<typeof Converter, 'default'>;

export type * from '@tensorflow/tfjs-core';
export type * from '@tensorflow/tfjs-layers';
export type * from '@tensorflow/tfjs-converter';
// Tensor's chained methods (x.cast(), x.dispose() …) are declared by module augmentation that the
// umbrella's typings pull in; the runtime registers them with tfjs-core itself.
import type {} from '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
