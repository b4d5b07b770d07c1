/**
 * Low-rank structure and the Bayes action (docs/theory.md): the divergence transition matrix and
 * its spectrum (dtm.ts), the synthetic local regime with a fitted bottleneck (synthetic.ts), and
 * the real-model comparison of a classifier head with a reference model's posteriors (model.ts).
 */
export * from './dtm.js';
export * from './synthetic.js';
export * from './model.js';
