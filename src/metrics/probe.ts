/**
 * Linear probes (docs/metrics/probe.md, Alain & Bengio 2016): multinomial logistic regression on a
 * layer's features, L2-regularised, features standardised with training-split statistics,
 * fitted on a seeded stratified split and scored on the held-out rows.
 *
 * The objective is  L(W,b) = (1/n) Σ_i −log softmax(x_iᵀW + b)_{y_i} + (λ/2)‖W‖_F²  (bias not
 * penalised). Loss and gradient are one onnxruntime graph (the n·d·K products run in MLAS);
 * L-BFGS runs in float64 in JavaScript over the (d+1)·K parameters. With float32 graphs the loss
 * is only known to ~1e-7 relative, so the line search also accepts steps that satisfy the
 * approximate Wolfe conditions of Hager & Zhang (a bracketing slope test that stays meaningful
 * when loss differences drown in rounding).
 *
 * The control probe is the same fit on randomly permuted training labels: its training accuracy
 * shows how much a probe of this size can memorise, its held-out accuracy (against the true
 * labels) should sit at chance.
 */
import { lbfgs, type LbfgsStatus } from '../linalg/lbfgs.js';
import { infNorm } from '../linalg/kernels.js';
import * as ort from 'onnxruntime-node';
import { RuntimeFailure } from '../errors.js';
import { buildModel, cachedSession, matmul } from '../linalg/ort-ops.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { Rng } from '../util/rng.js';
import { stratifiedSplit } from '../stats/split.js';
import { argmaxRows } from './accuracy.js';
import { DEFINITIONS, type MetricBasis, type MetricResult } from './types.js';

export type ProbeDtype = 'float32' | 'float64';

export interface FitOptions {
  /** L2 weight on the mean loss. Default 1e-3. */
  lambda?: number;
  /**
   * Stop when the largest gradient component is at most this. Default 1e-4, scikit-learn's `tol`
   * for the same L-BFGS fit of the mean loss: on 4×512 MLP layers (1400 rows) it cut iterations
   * from 300–500 to 100–170 with held-out accuracy within ±0.005 of the 1e-6 fit.
   */
  gtol?: number;
  /** Default 300. */
  maxIter?: number;
  /** L-BFGS memory. Default 10. */
  memory?: number;
  /** Precision of the loss/gradient graph. Default float32. */
  dtype?: ProbeDtype;
  /** Starting point θ = [W (d×K), b (K)] (default 0): a warm start from a related fit. */
  init?: Float64Array;
}

export interface ProbeOptions extends FitOptions {
  /** Share of each class used for fitting in the single-split mode (folds ≤ 1). Default 0.7. */
  trainFraction?: number;
  /**
   * Cross-fitting: ≥ 2 splits every class into this many folds, fits one probe per fold on the
   * others and scores each row with the probe that did not see it, so the held-out accuracy is
   * over every row and each probe is fitted on (folds−1)/folds of them. Default 1 (one split).
   */
  folds?: number;
  /** Seed of the split and of the control permutations. Default 0. */
  seed?: number;
  /** Fit the label-shuffled control probe. Default true. */
  control?: boolean;
  /** Label permutations for the control (mean and spread reported). Default 3. */
  controlPermutations?: number;
  /**
   * The control fits on at most this many of the first split's training rows (a stratified
   * subsample; default 2,000): shuffled labels make L-BFGS slow, and a probe memorises more of
   * fewer rows, so the control's train accuracy stays an upper bound on what the full-size probe
   * could memorise.
   */
  controlMaxRows?: number;
  /** Images the rows were drawn from (for `basis`: sampled when rows < population). */
  population?: number;
  /** Width of the layer before the rows were projected, when they were (for `basis`). */
  width?: number;
  /** How the rows were reduced before the probe, e.g. "seeded Gaussian projection 2048→1024". */
  projection?: string;
}

/** Held-out rows per class below which the probe's held-out accuracy gets a warning. */
export const PROBE_MIN_HELDOUT_PER_CLASS = 50;
/** Above this many classes the held-out confusion matrix (K² counts per layer) is not recorded. */
export const PROBE_CONFUSION_MAX_CLASSES = 100;

export interface SoftmaxFit {
  /** d×K row-major. */
  W: Float64Array;
  b: Float64Array;
  loss: number;
  /** ∞-norm of the final gradient. */
  gradNorm: number;
  iterations: number;
  evaluations: number;
  status: LbfgsStatus;
}

function objectiveSession(dtype: ProbeDtype): Promise<ort.InferenceSession> {
  return cachedSession(`softmax-objective:${dtype}`, () =>
    buildModel({
      name: 'softmax_objective',
      inputs: [
        { name: 'X', dtype, dims: ['n', 'd'] },
        { name: 'Y', dtype, dims: ['n', 'K'] },
        { name: 'W', dtype, dims: ['d', 'K'] },
        { name: 'b', dtype, dims: ['K'] },
        { name: 'invn', dtype, dims: [] },
        { name: 'lam', dtype, dims: [] },
        { name: 'halflam', dtype, dims: [] },
      ],
      outputs: [
        { name: 'loss', dtype, dims: [] },
        { name: 'gW', dtype, dims: ['d', 'K'] },
        { name: 'gb', dtype, dims: ['K'] },
      ],
      initializers: [{ name: 'axis0', dims: [1], values: [0] }],
      nodes: [
        { op: 'Gemm', inputs: ['X', 'W', 'b'], outputs: ['Z'] },
        { op: 'LogSoftmax', inputs: ['Z'], outputs: ['LS'], attrs: { axis: 1 } },
        { op: 'Mul', inputs: ['Y', 'LS'], outputs: ['YLS'] },
        { op: 'ReduceSum', inputs: ['YLS'], outputs: ['S'], attrs: { keepdims: 0 } },
        { op: 'Mul', inputs: ['S', 'invn'], outputs: ['negCE'] },
        { op: 'Mul', inputs: ['W', 'W'], outputs: ['W2'] },
        { op: 'ReduceSum', inputs: ['W2'], outputs: ['R'], attrs: { keepdims: 0 } },
        { op: 'Mul', inputs: ['R', 'halflam'], outputs: ['Reg'] },
        { op: 'Sub', inputs: ['Reg', 'negCE'], outputs: ['loss'] },
        { op: 'Exp', inputs: ['LS'], outputs: ['P'] },
        { op: 'Sub', inputs: ['P', 'Y'], outputs: ['Gz'] },
        { op: 'Gemm', inputs: ['X', 'Gz'], outputs: ['XtG'], attrs: { transA: 1 } },
        { op: 'Mul', inputs: ['XtG', 'invn'], outputs: ['gW1'] },
        { op: 'Mul', inputs: ['W', 'lam'], outputs: ['gW2'] },
        { op: 'Add', inputs: ['gW1', 'gW2'], outputs: ['gW'] },
        { op: 'ReduceSum', inputs: ['Gz', 'axis0'], outputs: ['Gs'], attrs: { keepdims: 0 } },
        { op: 'Mul', inputs: ['Gs', 'invn'], outputs: ['gb'] },
      ],
    }),
  );
}

function makeTensor(dtype: ProbeDtype, data: ArrayLike<number>, dims: number[]): ort.Tensor {
  return dtype === 'float64'
    ? new ort.Tensor('float64', Float64Array.from(data), dims)
    : new ort.Tensor('float32', Float32Array.from(data), dims);
}

export interface Objective {
  /** θ = [W (d×K row-major), b (K)] → loss and gradient (same layout), in float64. */
  evaluate(theta: Float64Array): Promise<{ loss: number; grad: Float64Array }>;
  size: number;
}

/** The probe objective on fixed data, as an onnxruntime graph. */
export async function softmaxObjective(
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  labels: Int32Array,
  K: number,
  lambda: number,
  dtype: ProbeDtype = 'float32',
): Promise<Objective> {
  if (X.length !== n * d) throw new Error(`softmaxObjective: ${X.length} values for ${n}×${d}`);
  const session = await objectiveSession(dtype);
  const Y = new Float64Array(n * K);
  for (let i = 0; i < n; i++) Y[i * K + labels[i]!] = 1;
  const fixed = {
    X: makeTensor(dtype, X, [n, d]),
    Y: makeTensor(dtype, Y, [n, K]),
    invn: makeTensor(dtype, [1 / n], []),
    lam: makeTensor(dtype, [lambda], []),
    halflam: makeTensor(dtype, [lambda / 2], []),
  };
  const size = d * K + K;
  return {
    size,
    async evaluate(theta: Float64Array) {
      const res = await session.run({
        ...fixed,
        W: makeTensor(dtype, theta.subarray(0, d * K), [d, K]),
        b: makeTensor(dtype, theta.subarray(d * K), [K]),
      });
      const grad = new Float64Array(size);
      grad.set(res.gW!.data as Float32Array | Float64Array, 0);
      grad.set(res.gb!.data as Float32Array | Float64Array, d * K);
      return { loss: Number((res.loss!.data as Float32Array | Float64Array)[0]), grad };
    },
  };
}

/** Fit the probe's logistic regression on (already standardised) rows. */
export async function fitSoftmaxRegression(
  X: Float32Array | Float64Array,
  n: number,
  d: number,
  labels: Int32Array,
  K: number,
  opts: FitOptions = {},
): Promise<SoftmaxFit> {
  const lambda = opts.lambda ?? 1e-3;
  const obj = await softmaxObjective(X, n, d, labels, K, lambda, opts.dtype ?? 'float32');
  if (opts.init && opts.init.length !== obj.size) throw new Error(`fitSoftmaxRegression: init has ${opts.init.length} values, expected ${obj.size}`);
  const r = await lbfgs(obj, opts.init ? new Float64Array(opts.init) : new Float64Array(obj.size), {
    maxIter: opts.maxIter ?? 300,
    gtol: opts.gtol ?? 1e-4,
    memory: opts.memory ?? 10,
    nonFiniteMessage: 'probe objective became non-finite (features too large?)',
  });
  return {
    W: r.x.slice(0, d * K),
    b: r.x.slice(d * K),
    loss: r.loss,
    gradNorm: infNorm(r.grad),
    iterations: r.iterations,
    evaluations: r.evaluations,
    status: r.status,
  };
}


/** Per-feature mean and std (population) of the given rows; a constant feature gets std 1. */
export function featureStandardization(X: Float32Array, d: number, rows: Int32Array): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j]! += X[r * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= Math.max(1, rows.length);
  for (const r of rows) {
    for (let j = 0; j < d; j++) {
      const v = X[r * d + j]! - mean[j]!;
      std[j]! += v * v;
    }
  }
  for (let j = 0; j < d; j++) {
    const s = Math.sqrt(std[j]! / Math.max(1, rows.length));
    std[j] = s > 0 ? s : 1;
  }
  return { mean, std };
}

function standardizedRows(X: Float32Array, d: number, rows: Int32Array, st: { mean: Float64Array; std: Float64Array }): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) out[i * d + j] = (X[r * d + j]! - st.mean[j]!) / st.std[j]!;
  });
  return out;
}

/** Predicted classes of standardised rows under a fitted probe. */
export async function probePredict(Xs: Float32Array, n: number, d: number, fit: SoftmaxFit, K: number): Promise<Int32Array> {
  const Z = await matmul(Xs, Float32Array.from(fit.W), n, d, K);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) Z[i * K + k]! += fit.b[k]!;
  return argmaxRows(Z, n, K);
}

function acc(pred: Int32Array, truth: Int32Array): number {
  let c = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === truth[i]) c++;
  return pred.length ? c / pred.length : NaN;
}

export interface ControlSummary {
  /** Means over the permutations. */
  trainAccuracy: number;
  heldOutAccuracy: number;
  /** Per permutation. */
  trainValues: number[];
  heldOutValues: number[];
  /** Population standard deviations over the permutations. */
  trainSd: number;
  heldOutSd: number;
  permutations: number;
  /** The first permutation's fit. */
  fit: SoftmaxFit;
}

export interface ProbeReport {
  metrics: MetricResult[];
  trainAccuracy: number;
  heldOutAccuracy: number;
  control: ControlSummary | null;
  /** Held-out accuracy of always answering the most common training class. */
  chance: number;
  /** The (first fold's) fit, standardisation and split. */
  fit: SoftmaxFit;
  standardization: { mean: Float64Array; std: Float64Array };
  split: { train: Int32Array; test: Int32Array };
  /** Rows scored held-out (all rows when cross-fitted) and the fewest of one class among them. */
  heldOutRows: number;
  minHeldOutPerClass: number;
  /** Held-out confusion counts, rows true class, columns predicted (null above PROBE_CONFUSION_MAX_CLASSES). */
  confusion: number[][] | null;
  folds: number;
}

/** Each row's fold: per class, a seeded shuffle dealt round-robin, so folds keep class proportions. */
export function stratifiedFolds(labels: Int32Array, K: number, folds: number, rng: Rng): Int32Array {
  const byClass: number[][] = Array.from({ length: K }, () => []);
  labels.forEach((y, i) => byClass[y]!.push(i));
  const fold = new Int32Array(labels.length);
  let offset = 0;
  for (const rows of byClass) {
    rng.shuffle(rows);
    // Rotating the start keeps small classes from all landing in the first folds.
    rows.forEach((r, t) => (fold[r] = (t + offset) % folds));
    offset += rows.length;
  }
  return fold;
}

function meanSdOf(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, sd: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length) };
}

interface FoldFit {
  fit: SoftmaxFit;
  st: { mean: Float64Array; std: Float64Array };
  trainAccuracy: number;
  /** Predictions for the test rows, in order. */
  predicted: Int32Array;
}

async function fitFold(X: Float32Array, d: number, K: number, train: Int32Array, test: Int32Array, trainLabels: Int32Array, opts: FitOptions): Promise<FoldFit> {
  const st = featureStandardization(X, d, train);
  const Xtr = standardizedRows(X, d, train, st);
  const fit = await fitSoftmaxRegression(Xtr, train.length, d, trainLabels, K, opts);
  const trainAccuracy = acc(await probePredict(Xtr, train.length, d, fit, K), trainLabels);
  const predicted = test.length ? await probePredict(standardizedRows(X, d, test, st), test.length, d, fit, K) : new Int32Array(0);
  return { fit, st, trainAccuracy, predicted };
}

/**
 * The linear probe of a layer's rows. Single split (default): fitted on a stratified
 * `trainFraction`, scored on the rest. Cross-fitted (`folds` ≥ 2): each row scored by the probe
 * of the fold that left it out (warm-started from the previous fold's fit), so the held-out
 * accuracy covers every row. The control refits on `controlPermutations` permutations of the
 * first split's training labels and reports their mean, with the spread in `detail`.
 */
export async function linearProbe(samples: SampleMatrix, opts: ProbeOptions = {}): Promise<ProbeReport> {
  const { X, d, K, n } = samples;
  const trainFraction = opts.trainFraction ?? 0.7;
  const folds = Math.max(1, Math.floor(opts.folds ?? 1));
  const seed = opts.seed ?? 0;
  const labels = samples.labels;
  let splits: { train: Int32Array; test: Int32Array }[];
  if (folds >= 2) {
    const fold = stratifiedFolds(labels, K, folds, new Rng(seed));
    splits = Array.from({ length: folds }, (_, f) => ({
      train: Int32Array.from({ length: n }, (_, i) => i).filter((i) => fold[i] !== f),
      test: Int32Array.from({ length: n }, (_, i) => i).filter((i) => fold[i] === f),
    }));
  } else {
    splits = [stratifiedSplit(labels, K, trainFraction, new Rng(seed), 'train')];
  }
  const first = splits[0]!;
  if (first.train.length === 0 || first.test.length === 0) {
    throw new RuntimeFailure(`linear probe needs rows on both sides of the split (got ${first.train.length} train, ${first.test.length} held out)`);
  }
  const fitOpts: FitOptions = { ...opts };
  delete fitOpts.init;
  let correct = 0;
  let scored = 0;
  const trainAccs: number[] = [];
  const heldPerClass = new Array<number>(K).fill(0);
  // Held-out confusion counts (row: true class, column: the probe's prediction), from the same
  // scoring as the accuracy; recorded up to PROBE_CONFUSION_MAX_CLASSES classes.
  const confusion = K <= PROBE_CONFUSION_MAX_CLASSES ? Array.from({ length: K }, () => new Array<number>(K).fill(0)) : null;
  let firstFit: FoldFit | null = null;
  let warm: Float64Array | undefined = opts.init;
  let iterations = 0;
  let evaluations = 0;
  const statuses = new Set<string>();
  for (const sp of splits) {
    const ytr = Int32Array.from(sp.train, (r) => labels[r]!);
    const ff = await fitFold(X, d, K, sp.train, sp.test, ytr, { ...fitOpts, ...(warm ? { init: warm } : {}) });
    warm = Float64Array.from([...ff.fit.W, ...ff.fit.b]);
    firstFit ??= ff;
    trainAccs.push(ff.trainAccuracy);
    iterations += ff.fit.iterations;
    evaluations += ff.fit.evaluations;
    statuses.add(ff.fit.status);
    sp.test.forEach((r, t) => {
      heldPerClass[labels[r]!]!++;
      if (ff.predicted[t] === labels[r]) correct++;
      if (confusion) confusion[labels[r]!]![ff.predicted[t]!]!++;
    });
    scored += sp.test.length;
  }
  const fit = firstFit!;
  const trainAccuracy = trainAccs.reduce((a, b) => a + b, 0) / trainAccs.length;
  const heldOutAccuracy = scored ? correct / scored : NaN;
  const inData = new Set(labels);
  const present = heldPerClass.filter((_, k) => inData.has(k));
  const minHeldOutPerClass = present.length ? Math.min(...present) : 0;

  const ytr0 = Int32Array.from(first.train, (r) => labels[r]!);
  const yte0 = Int32Array.from(first.test, (r) => labels[r]!);
  const freq = new Array<number>(K).fill(0);
  for (const y of ytr0) freq[y]!++;
  const majority = freq.indexOf(Math.max(...freq));
  const chance = yte0.reduce((s, y) => s + (y === majority ? 1 : 0), 0) / yte0.length;

  let control: ControlSummary | null = null;
  const P = opts.controlPermutations ?? 3;
  let controlRows = 0;
  // The control's stratified subsample of the first split's training rows (when it is larger).
  const sub = new Uint8Array(first.train.length);
  if (first.train.length > (opts.controlMaxRows ?? 2000)) {
    const keep = stratifiedSplit(ytr0, K, (opts.controlMaxRows ?? 2000) / first.train.length, new Rng(seed ^ 0x1b873593), 'train').train;
    for (const i of keep) sub[i] = 1;
  }
  if ((opts.control ?? true) && P > 0) {
    const trainValues: number[] = [];
    const heldOutValues: number[] = [];
    let cfit0: SoftmaxFit | null = null;
    const permRng = new Rng(seed ^ 0x5bd1e995);
    const maxRows = opts.controlMaxRows ?? 2000;
    const ctrain = first.train.length > maxRows ? first.train.filter((_, i) => sub[i]!) : first.train;
    const ytrC = Int32Array.from(ctrain, (r) => labels[r]!);
    const st = fit.st;
    const Xtr = standardizedRows(X, d, ctrain, st);
    const Xte = standardizedRows(X, d, first.test, st);
    for (let q = 0; q < P; q++) {
      const shuffled = Int32Array.from(ytrC);
      permRng.shuffle(shuffled);
      const cfit = await fitSoftmaxRegression(Xtr, ctrain.length, d, shuffled, K, fitOpts);
      cfit0 ??= cfit;
      trainValues.push(acc(await probePredict(Xtr, ctrain.length, d, cfit, K), shuffled));
      heldOutValues.push(acc(await probePredict(Xte, first.test.length, d, cfit, K), yte0));
    }
    controlRows = ctrain.length;
    const tr = meanSdOf(trainValues);
    const te = meanSdOf(heldOutValues);
    control = { trainAccuracy: tr.mean, heldOutAccuracy: te.mean, trainValues, heldOutValues, trainSd: tr.sd, heldOutSd: te.sd, permutations: P, fit: cfit0! };
  }

  const lambda = opts.lambda ?? 1e-3;
  const status = statuses.size === 1 ? [...statuses][0]! : [...statuses].join('/');
  const nTrain = folds >= 2 ? Math.round(splits.reduce((s, sp) => s + sp.train.length, 0) / folds) : first.train.length;
  const warning =
    minHeldOutPerClass < PROBE_MIN_HELDOUT_PER_CLASS
      ? `only ${minHeldOutPerClass} held-out rows in the smallest class (under ${PROBE_MIN_HELDOUT_PER_CLASS}): the held-out accuracy is noisy; use more images (--per-class)${folds >= 2 ? '' : ' or cross-fitting (every row held out once)'}`
      : undefined;
  const detail = {
    nTrain,
    nHeldOut: scored,
    minHeldOutPerClass,
    d,
    K,
    lambda,
    gtol: opts.gtol ?? 1e-4,
    ...(folds >= 2 ? { folds, heldOutMethod: `${folds}-fold cross-fitting: every row scored by the probe fitted on the other folds` } : { trainFraction }),
    seed,
    chance,
    status,
    iterations,
    evaluations,
    ...(opts.projection ? { projection: opts.projection } : {}),
    ...(warning ? { warning } : {}),
  };
  const population = opts.population ?? n;
  const width = opts.width ?? d;
  const how = folds >= 2 ? `${folds}-fold cross-fitted on ${n} rows (each probe fitted on ~${nTrain}, every row held out once)` : `fitted on ${first.train.length} rows, held out ${scored}`;
  const basis: MetricBasis = {
    n,
    sampled: n < population,
    ...(width !== d ? { dims: d, width } : {}),
    note: `${how}${n < population ? ` of ${population} images` : ''}${opts.projection ? `; ${opts.projection}` : ''}${warning ? `; ${warning}` : ''}`,
  };
  const metrics: MetricResult[] = [
    { name: 'probe_train_accuracy', value: trainAccuracy, definition: DEFINITIONS.probe, basis, detail },
    {
      name: 'probe_heldout_accuracy',
      value: heldOutAccuracy,
      definition: DEFINITIONS.probe,
      basis,
      detail: confusion ? { ...detail, confusion } : { ...detail, confusionNote: `no confusion matrix: ${K} classes is above ${PROBE_CONFUSION_MAX_CLASSES}` },
    },
  ];
  if (control) {
    const cdetail = {
      ...detail,
      nTrain: controlRows,
      nHeldOut: first.test.length,
      permutations: control.permutations,
      note: `the same probe fitted on ${control.permutations} permutations of the labels of ${controlRows} training rows of one split (mean; spread in sd/values)`,
    };
    const cbasis: MetricBasis = { ...basis, note: `fitted on ${controlRows} rows with permuted labels, held out ${first.test.length}; mean of ${control.permutations} permutations` };
    metrics.push(
      { name: 'probe_control_train_accuracy', value: control.trainAccuracy, definition: DEFINITIONS.probe, basis: cbasis, detail: { ...cdetail, sd: control.trainSd, values: control.trainValues } },
      { name: 'probe_control_heldout_accuracy', value: control.heldOutAccuracy, definition: DEFINITIONS.probe, basis: cbasis, detail: { ...cdetail, sd: control.heldOutSd, values: control.heldOutValues } },
    );
  }
  return { metrics, trainAccuracy, heldOutAccuracy, control, chance, fit: fit.fit, standardization: fit.st, split: first, heldOutRows: scored, minHeldOutPerClass, folds, confusion };
}
