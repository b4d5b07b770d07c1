/** The metrics: pure functions from statistics or sample matrices to MetricResults. */
export * from './types.js';
export * from './geometry.js';
export * from './collapse.js';
export * from './rank.js';
export * from './probe.js';
export * from './bootstrap.js';
export * from './accuracy.js';
export * from './catalog.js';
