/**
 * Deep linear networks and the layer-geometry law (docs/theory.md): the network and its training
 * (net.ts), the geometry of a trained net (geometry.ts), the experiment (experiment.ts).
 */
export * from './net.js';
export * from './geometry.js';
export * from './experiment.js';
