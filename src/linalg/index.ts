/** Fast products through onnxruntime and small dense float64 linear algebra. */
export * from './ort-ops.js';
export * from './dense.js';
