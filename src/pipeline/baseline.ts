/**
 * `audit --baseline random-layer` (SCIENCE.md §4): for each trained layer, a frozen Gaussian layer
 * of the same width and activation applied to the same input (the previous selected layer's
 * buffered features, or the model input for the first), measured with the same separability
 * metrics. The excess (trained − random) says what training added beyond what width alone gives.
 */
import { randomLayerBaseline, BASELINE_DEFINITION } from '../theory/index.js';
import type { Activation } from '../theory/layer.js';
import { linearProbe } from '../metrics/probe.js';
import { mdlsm } from '../metrics/separability/index.js';
import type { MetricResult } from '../metrics/types.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import { AUDIT_MAX_DIM_FRACTION } from './layer-metrics.js';

/** The activation a random twin of this layer should use; ReLU when the op does not say. */
export function activationOf(op: string, activation?: string): Activation {
  const s = `${activation ?? ''} ${op}`.toLowerCase();
  if (s.includes('gelu')) return 'gelu';
  if (s.includes('leaky')) return 'leaky-relu';
  if (s.includes('elu') && !s.includes('relu')) return 'elu';
  if (s.includes('tanh')) return 'tanh';
  return 'relu';
}

export async function baselineMetrics(
  input: SampleMatrix,
  width: number,
  activation: Activation,
  trained: readonly MetricResult[],
  opts: { seed: number; metrics: readonly MetricGroup[] },
): Promise<MetricResult[]> {
  const b = await randomLayerBaseline({ input, width, activation, seed: opts.seed });
  const rf = b.randomFeatures;
  const random: SampleMatrix = { X: rf.X, n: rf.n, d: rf.d, K: rf.K, labels: rf.labels, ids: input.ids };
  const common = {
    activation,
    width,
    inputDim: input.d,
    perClassInputRank: b.perClassRank,
    rHat: b.rHat,
    principalAnglesDeg: { min: b.principalAngles.minDeg, mean: b.principalAngles.meanDeg },
    predictedThreshold: b.predictedThreshold,
  };
  const def = `${BASELINE_DEFINITION}; random twin: Gaussian W (${width}×${input.d}), ${activation}, applied to this layer's input`;
  const out: MetricResult[] = [
    { name: 'baseline_width_ratio', value: b.widthRatio ?? NaN, definition: `${def}; width ratio D_l / D*(r̂)`, detail: common },
  ];
  const get = (name: string) => trained.find((m) => m.name === name)?.value;
  const probe = await linearProbe(random, { seed: opts.seed, control: false });
  out.push({ name: 'baseline_probe_heldout_accuracy', value: probe.heldOutAccuracy, definition: `${def}; held-out linear probe accuracy`, detail: common });
  const tp = get('probe_heldout_accuracy');
  if (tp !== undefined) out.push({ name: 'excess_probe_heldout_accuracy', value: tp - probe.heldOutAccuracy, definition: 'trained − random-layer held-out probe accuracy', detail: common });
  if (opts.metrics.includes('mdlsm')) {
    const k = await mdlsm(random, { seed: opts.seed, permutations: 0, maxDimFraction: AUDIT_MAX_DIM_FRACTION });
    const kh = k.heldOut?.mean ?? null;
    out.push({ name: 'baseline_mdlsm_heldout_kappa', value: kh ?? NaN, definition: `${def}; held-out MD-LSM κ`, detail: { ...common, reduction: k.reduction } });
    const tk = get('mdlsm_heldout_kappa');
    if (tk !== undefined && kh !== null) out.push({ name: 'excess_mdlsm_heldout_kappa', value: tk - kh, definition: 'trained − random-layer held-out MD-LSM κ', detail: common });
  }
  return out;
}
