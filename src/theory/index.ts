/**
 * Random-layer theory (docs/theory.md#theory-phase): union-of-subspaces data, random layers, the exact
 * (quadratic, semidefinite) and sample (LP) separability tests, phase-transition maps with the
 * threshold D*(r), per-class energy ranks of real data, and the random-layer baseline for a
 * trained layer. The pieces the audit also needs (the random layer, union-of-subspaces data, the
 * separability tests, phase maps, energy ranks, D*(r) and the verdict) live in the spine
 * (features/random-layer.ts, metrics/baseline/) so that pipeline/ never imports theory/; they are
 * re-exported here.
 */
export {
  columns,
  orthonormalColumns,
  pairwiseAngles,
  principalAngles,
  randomSubspace,
  subspacePairAtAngle,
  unionOfSubspaces,
  uosBases,
  type PairAngles,
  type UnionOfSubspaces,
  type UosOptions,
} from '../metrics/baseline/subspaces.js';
export {
  ACTIVATIONS,
  ELU_ALPHA,
  LEAKY_SLOPE,
  activationFn,
  erf,
  gaussianLayerWeights,
  parseActivation,
  projectedWeights,
  randomLayer,
  type Activation,
  type RandomLayer,
  type RandomLayerOptions,
} from '../features/random-layer.js';
export { blockMatrix, type ExactProof, type ExactResult, type ExactStatus, type QuadBlock } from '../metrics/baseline/quad-block.js';
export { barrierSeparable, type BarrierOptions } from '../metrics/baseline/barrier.js';
export { cuttingPlaneSeparable, type ExactOptions } from './cutting-plane.js';
export { exactSeparable, type ExactMethod, type ExactTestInput, type ExactTestResult } from './exact.js';
export { coverCapacity, sampleLp, sampleSeparable, type SampleLp, type SampleLpVerdict, type SampleTestOptions, type SampleTestResult } from '../metrics/baseline/sample-lp.js';
export {
  PHASE_AXES,
  PHASE_DEFINITION,
  cdfAt,
  halfCrossing,
  logLogFit,
  phaseTransition,
  type LogLogFit,
  type PhaseAxis,
  type PhaseColumn,
  type PhaseOptions,
  type PhaseResult,
} from '../metrics/baseline/phase.js';
export { makeTrial, trialThreshold, type SeparabilityTest, type TrialProblem, type TrialSpec, type TrialThreshold } from '../metrics/baseline/trial.js';
export { dStarSpec, heatmapSpec, phaseCsv, phaseHtml } from './phase-report.js';
export { RANK_DEFINITION, classEnergyRanks, classRank, datasetClassRanks, energyRank, energyRankFromSquares, type ClassRank, type DatasetRankOptions, type DatasetRankResult } from './rank.js';
export {
  BASELINE_DEFINITION,
  inputSubspaces,
  randomLayerBaseline,
  type BaselineInput,
  type InputSubspaces,
  type PairAngleSummary,
  type RandomLayerBaseline,
  type RandomLayerBaselineOptions,
} from '../metrics/baseline/input-subspaces.js';
export { ENERGY_LEVELS, VERDICT_ENERGY, predictedThreshold, theoryVerdict, type RankAtEnergy, type TheoryVerdict, type VerdictKind } from '../metrics/baseline/threshold.js';
export { phaseInset, type PhaseInset } from '../metrics/baseline/inset.js';
export { deriveSeed } from '../util/seed.js';
export * as clustering from './clustering/index.js';
export * as lowrank from './lowrank/index.js';
export * as deepLinear from './deep-linear/index.js';
