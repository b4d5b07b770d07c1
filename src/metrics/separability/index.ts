/** Linear separability of hidden layers: MD-LSM κ (docs/metrics/separability.md) and the exact LP (docs/metrics/separability.md#lp_separable_fraction). */
export { kappaForDirection, pairCounts, type PairCounts } from './auc.js';
export { CANDIDATES, DEFAULT_ENGINE_PARAMS, type CandidateName, type EngineParams } from './candidates.js';
export { lpSeparable, separabilityLpText, type LpOptions, type LpResult } from './lp.js';
export {
  LP_DEFINITION,
  MDLSM_DEFINITION,
  mdlsm,
  pairKappa,
  separabilityMatrix,
  type KappaMatrixSummary,
  type KappaOptions,
  type MdlsmOptions,
  type MdlsmResult,
  type PairKappaResult,
  type SeparabilityMatrixResult,
  type WorstPair,
} from './mdlsm.js';
export { MIN_DIM_SHARE, MIN_RELIABLE_DIMS, kappaSaturationWarning, mdlsmMetrics, separabilityBasis, separabilityMetrics } from './records.js';
export { saturationGuard, type GuardOptions, type ReduceMode, type ReductionInfo } from './reduce-pca.js';
