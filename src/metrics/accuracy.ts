/** Top-1 accuracy of a model's outputs (logits or probabilities: argmax is the same). */
import { RuntimeFailure } from '../errors.js';
import { DEFINITIONS, type MetricResult } from './types.js';

/** Row-wise argmax of an n×K matrix; ties go to the lowest class. NaN rows are an error. */
export function argmaxRows(scores: Float32Array | Float64Array, n: number, K: number): Int32Array {
  if (scores.length !== n * K) throw new Error(`argmaxRows: ${scores.length} values for ${n}×${K}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    let arg = -1;
    for (let k = 0; k < K; k++) {
      const v = scores[i * K + k]!;
      if (Number.isNaN(v)) throw new RuntimeFailure(`model output of sample ${i} is NaN at class ${k}`);
      if (v > best) {
        best = v;
        arg = k;
      }
    }
    out[i] = arg < 0 ? 0 : arg;
  }
  return out;
}

export function accuracy(scores: Float32Array | Float64Array, n: number, K: number, labels: Int32Array): MetricResult {
  if (labels.length !== n) throw new Error(`accuracy: ${labels.length} labels for ${n} rows`);
  const pred = argmaxRows(scores, n, K);
  let correct = 0;
  for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
  return { name: 'accuracy', value: n > 0 ? correct / n : NaN, definition: DEFINITIONS.accuracy, detail: { n, correct } };
}
