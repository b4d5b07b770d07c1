/** Streaming statistics and sample buffers of layer features. */
export * from './moments.js';
export * from './accumulator.js';
export * from './sample-buffer.js';
