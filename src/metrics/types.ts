/**
 * What every metric returns. `definition` names the documented definition (docs/metrics/) the number follows, so
 * a report can always be traced to the formula (and its source) that produced it.
 */
export interface MetricResult {
  name: string;
  value: number;
  definition: string;
  detail?: Record<string, unknown>;
  ci?: [number, number];
  basis?: MetricBasis;
  /** The reason the metric could not be computed; value is NaN then. */
  failed?: string;
}

/** What a value was computed on, when that is not "exact over all N images at full width". */
export interface MetricBasis {
  /** rows the value was computed on (N for full-data metrics, buffer rows for sampled ones) */
  n: number;
  /** true when the rows are a sample of the N images */
  sampled: boolean;
  /** the dimension actually used when the features were reduced (PCA to k, projection) */
  dims?: number;
  /** the layer's width before that reduction */
  width?: number;
  /** free text: how it was reduced or estimated, e.g. "PCA to 10 dims" */
  note?: string;
}

/** One place for the definition strings, so a change of definition is a change here. */
export const DEFINITIONS = {
  compression: 'compression C = tr(Σ_W)/tr(Σ_B), Σ_W over total N, Σ_B = (1/K)Σ_k μ̃_k μ̃_kᵀ (Wang et al. 2023, PNC_DLN; docs/metrics/geometry.md#compression)',
  discrimination: 'discrimination D = 1 − max_{k≠l} cos(μ_k, μ_l), uncentred means, signed cosine (Wang et al. 2023, PNC_DLN; docs/metrics/geometry.md#discrimination)',
  nc1: 'NC1 = tr(Σ_W Σ_B⁺)/K, pseudo-inverse in the span of the centred means (Papyan, Han, Donoho 2020) (docs/metrics/collapse.md#nc1)',
  nc2Equinorm: 'NC2 equinorm = std_k ‖μ̃_k‖ / mean_k ‖μ̃_k‖ (population std) (Papyan, Han, Donoho 2020) (docs/metrics/collapse.md#nc2_equinorm)',
  nc2Equiangularity: 'NC2 equiangularity = std_{k<l} cos(μ̃_k, μ̃_l) (population std) (Papyan, Han, Donoho 2020) (docs/metrics/collapse.md#nc2_equiangularity)',
  nc2MaxAngle: 'NC2 max-angle = mean_{k≠l} |cos(μ̃_k, μ̃_l) + 1/(K−1)| (Papyan, Han, Donoho 2020) (docs/metrics/collapse.md#nc2_max_angle)',
  nc3: 'NC3 = ‖W/‖W‖_F − M̃ᵀ/‖M̃‖_F‖_F² (Papyan, Han, Donoho 2020) (docs/metrics/collapse.md#nc3)',
  nc4: 'NC4 = fraction of samples whose nearest class mean (Euclidean) differs from the network prediction (Papyan, Han, Donoho 2020) (docs/metrics/collapse.md#nc4)',
  cdnv: 'CDNV = mean_{k<l} (Var_k + Var_l)/(2‖μ_k − μ_l‖²), Var_k = mean ‖h − μ_k‖² (Galanti et al.) (docs/metrics/collapse.md#cdnv)',
  numericalRank: 'numerical rank = smallest r whose top-r singular values hold 95% of the singular-value sum of the centred features (tunnel effect) (docs/metrics/rank.md#numerical_rank)',
  effectiveRank: 'effective rank = exp(entropy of the normalised singular values of the centred features) (Roy & Vetterli 2007) (docs/metrics/rank.md#effective_rank)',
  probe: 'linear probe: multinomial logistic regression, L2, standardised features, stratified split (Alain & Bengio 2016) (docs/metrics/probe.md#probe_heldout_accuracy)',
  accuracy: 'top-1 accuracy: argmax of the model output equals the label',
} as const;
