/** Linear separability of hidden layers: MD-LSM κ (docs/metrics/separability.md) and the exact LP (§3.2). */
export { kappaForDirection, pairCounts, type PairCounts } from './auc.js';
export { CANDIDATES, DEFAULT_ENGINE_PARAMS, type CandidateName, type EngineParams } from './candidates.js';
export { lpSeparable, separabilityLpText, type LpOptions, type LpResult } from './lp.js';
export {
  LP_DEFINITION,
  MDLSM_DEFINITION,
  kappaSaturationWarning,
  mdlsm,
  mdlsmMetrics,
  pairKappa,
  separabilityMatrix,
  separabilityMetrics,
  type KappaMatrixSummary,
  type KappaOptions,
  type MdlsmOptions,
  type MdlsmResult,
  type PairKappaResult,
  type SeparabilityMatrixResult,
  type WorstPair,
} from './mdlsm.js';
export { saturationGuard, type GuardOptions, type ReduceMode, type ReductionInfo } from './reduce-pca.js';
