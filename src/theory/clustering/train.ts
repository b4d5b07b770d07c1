/**
 * Weight clustering, the experiment (docs/theory.md#theory-clustering): full-batch gradient
 * descent on the logistic loss from a small initialisation, in plain float64, measuring the
 * clustering and the agreement regime at every step; and its CSV.
 */
import { RuntimeFailure, UsageError } from '../../errors.js';
import { Rng } from '../../util/rng.js';
import { deriveSeed } from '../../util/seed.js';
import { csvLine } from '../../report/csv.js';
import { agreementRegime, checkInputs, clusterMeasures, clusteringActivation, collapsedLinear, CLUSTERING_DEFINITION, linearAgreement, netOutputs, type TwoLayerNet } from './net.js';
import { checkLinearlySeparable, linearTeacherData, STREAM_CLUSTER, type LabelledPoints } from './data.js';

// ---------------------------------------------------------------------------------------------
// Training

export interface ClusteringTrainOptions {
  /** Input dimension (synthetic data). Default 20. */
  d?: number;
  /** Hidden width. Default 40. */
  m?: number;
  /** Training points (synthetic data). Default 400. */
  n?: number;
  /** Test points (synthetic data). Default n. */
  nTest?: number;
  /** Random N(0, I_d) inputs for the agreement on random inputs. Default 2000. */
  nRandom?: number;
  /** Teacher margin γ (synthetic data). Default 0.5. */
  margin?: number;
  /** Share of flipped training labels (synthetic data). Default 0. */
  labelNoise?: number;
  /** Use these points instead of a synthetic teacher (labels ±1). */
  data?: { d: number; train: LabelledPoints; test?: LabelledPoints };
  /** 'leaky-relu' (default) or 'relu'; anything else is refused. */
  activation?: string;
  /** Leaky slope α (default 0.1). */
  alpha?: number;
  /** Gradient-descent steps (full batch: one step per epoch). Default 300. */
  epochs?: number;
  /** Learning rate. Default 0.5. */
  lr?: number;
  /** Initial scale: w_j ~ N(0, s²I_d/d) so ‖w_j‖ ≈ s, and (trained output layer) |v_j| = s. Default 1e-3. */
  initScale?: number;
  /**
   * 'trained' (default): both layers trained, v_j = ±s at init (half each sign);
   * 'fixed': v_j = ±1/√m (half each sign) held fixed, only W trained.
   */
  outputLayer?: 'trained' | 'fixed';
  /** Record every this many steps (and at 0 and at the end). Default max(1, epochs/20). */
  every?: number;
  seed?: number;
  /** Skip the LP check (for tests of the training loop only). */
  skipSeparabilityCheck?: boolean;
  onProgress?: (step: number, total: number) => void;
}

export interface ClusteringRecord {
  /** Gradient steps taken before this record. */
  step: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number | null;
  coherencePlus: number | null;
  coherenceMinus: number | null;
  meanCosinePlus: number | null;
  meanCosineMinus: number | null;
  agreementTrain: number;
  agreementTest: number | null;
  agreementRandom: number;
  /** Share of training points in the agreement regime. */
  regimeFraction: number;
  /** cos(v_lin, w*) for a synthetic teacher; null otherwise. */
  teacherCosine: number | null;
  groupPlus: number;
  groupMinus: number;
  /** ‖v_lin‖. */
  vLinNorm: number;
}

export interface ClusteringResult {
  definition: string;
  activation: 'leaky-relu' | 'relu';
  alpha: number;
  d: number;
  m: number;
  n: number;
  nTest: number;
  nRandom: number;
  margin: number | null;
  labelNoise: number | null;
  epochs: number;
  lr: number;
  initScale: number;
  outputLayer: 'trained' | 'fixed';
  every: number;
  seed: number;
  separability: { separable: boolean; definition: string; minSlack: number };
  /** First step s (weights after s updates) at which every training point was in the agreement regime; null if never. */
  regimeFirstStep: number | null;
  /** From this step on the regime held at every step to the end; null if it does not hold at the end. */
  regimeStableFrom: number | null;
  /** Steps (out of epochs + 1 weight states) at which the regime held on every training point. */
  regimeSteps: number;
  records: ClusteringRecord[];
  initial: ClusteringRecord;
  final: ClusteringRecord;
  /** Final weights. */
  net: TwoLayerNet;
  vLin: Float64Array;
  teacher: Float64Array | null;
  warnings: string[];
  elapsedMs: number;
}

/** Largest n·m·d·epochs accepted by `trainClustering` (about a few minutes of one core). */
export const MAX_WORK = 1e11;

function accuracy(out: Float64Array, y: Int8Array): number {
  let c = 0;
  for (let i = 0; i < out.length; i++) if (out[i]! * y[i]! > 0) c++;
  return out.length > 0 ? c / out.length : NaN;
}

function logistic(margin: number): number {
  return margin > 0 ? Math.log1p(Math.exp(-margin)) : -margin + Math.log1p(Math.exp(margin));
}

function positiveInt(flag: string, v: number, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function positive(flag: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new UsageError(`--${flag} must be a number > 0, got ${v}`);
  return v;
}

/**
 * Trains a small-init two-layer leaky-ReLU net on linearly separable data by full-batch gradient
 * descent on the logistic loss and records coherence, agreement and the agreement regime.
 * Refuses (UsageError) data that the LP proves inseparable and activations other than the
 * leaky-ReLU family; ReLU (α = 0) runs with a warning.
 */
export async function trainClustering(opts: ClusteringTrainOptions = {}): Promise<ClusteringResult> {
  const t0 = performance.now();
  const act = clusteringActivation(opts.activation ?? 'leaky-relu', opts.alpha);
  const alpha = act.alpha;
  const m = positiveInt('m', opts.m ?? 40);
  const epochs = positiveInt('epochs', opts.epochs ?? 300);
  const lr = positive('lr', opts.lr ?? 0.5);
  const initScale = positive('init-scale', opts.initScale ?? 1e-3);
  const every = positiveInt('every', opts.every ?? Math.max(1, Math.floor(epochs / 20)));
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${seed}`);
  const nRandom = positiveInt('n-random', opts.nRandom ?? 2000);
  const outputLayer = opts.outputLayer ?? 'trained';
  if (outputLayer !== 'trained' && outputLayer !== 'fixed') throw new UsageError(`output layer must be trained or fixed, got ${String(outputLayer)}`);
  if (m < 2) throw new UsageError(`--m must be at least 2 (one neuron per output sign), got ${m}`);

  let d: number;
  let train: LabelledPoints;
  let test: LabelledPoints | null;
  let teacher: Float64Array | null = null;
  let margin: number | null = null;
  let labelNoise: number | null = null;
  if (opts.data) {
    d = positiveInt('d', opts.data.d);
    train = opts.data.train;
    test = opts.data.test ?? null;
    checkInputs(train.X, train.n, d, 'training points');
    if (train.y.length !== train.n) throw new UsageError(`training points: ${train.y.length} labels for ${train.n} points`);
    if (test) {
      checkInputs(test.X, test.n, d, 'test points');
      if (test.y.length !== test.n) throw new UsageError(`test points: ${test.y.length} labels for ${test.n} points`);
    }
  } else {
    d = positiveInt('d', opts.d ?? 20);
    const data = linearTeacherData({ d, n: opts.n ?? 400, ...(opts.nTest !== undefined ? { nTest: opts.nTest } : {}), margin: opts.margin ?? 0.5, labelNoise: opts.labelNoise ?? 0, seed });
    train = data.train;
    test = data.test.n > 0 ? data.test : null;
    teacher = data.teacher;
    margin = data.margin;
    labelNoise = data.labelNoise;
  }
  const n = train.n;
  const work = n * m * d * epochs;
  if (work > MAX_WORK) {
    throw new UsageError(
      `n·m·d·epochs = ${n}·${m}·${d}·${epochs} ≈ ${work.toExponential(1)} is too much for this plain float64 trainer (limit ${MAX_WORK.toExponential(0)}, minutes of CPU)`,
      'reduce --n, --m, --d or --epochs (the phenomenon shows at d ≤ 50, m ≤ 100, n ≤ 2000, a few hundred steps)',
    );
  }
  for (let i = 0; i < train.X.length; i++) if (!Number.isFinite(train.X[i]!)) throw new UsageError(`training point ${Math.floor(i / d)} has a non-finite value`);

  let separability: ClusteringResult['separability'];
  if (opts.skipSeparabilityCheck) {
    separability = { separable: true, definition: 'not checked (skipSeparabilityCheck)', minSlack: NaN };
  } else {
    const sep = await checkLinearlySeparable(train, d);
    if (!sep.separable) {
      throw new UsageError(
        `the analysis needs linearly separable data, and these ${n} training points are not separable by a hyperplane through the origin (proven by the HiGHS LP)` +
          (labelNoise ? ` — ${Math.round(labelNoise * n)} labels were flipped by --label-noise ${labelNoise}` : ''),
        labelNoise ? 'use --label-noise 0 (docs/theory.md#theory-clustering studies linear teachers: separable data)' : 'the clustering result of docs/theory.md#theory-clustering is about linearly separable data (a linear teacher)',
      );
    }
    separability = { separable: true, definition: sep.definition, minSlack: sep.minSlack };
  }

  // Initialisation.
  const irng = new Rng(deriveSeed(seed, STREAM_CLUSTER.init));
  const W = new Float64Array(m * d);
  const wStd = initScale / Math.sqrt(d);
  for (let i = 0; i < W.length; i++) W[i] = wStd * irng.normal();
  const v = new Float64Array(m);
  const signs = Array.from({ length: m }, (_, j) => (j < Math.ceil(m / 2) ? 1 : -1));
  irng.shuffle(signs);
  const vScale = outputLayer === 'fixed' ? 1 / Math.sqrt(m) : initScale;
  for (let j = 0; j < m; j++) v[j] = signs[j]! * vScale;
  const net: TwoLayerNet = { d, m, W, v, alpha };

  const rrng = new Rng(deriveSeed(seed, STREAM_CLUSTER.random));
  const R = new Float64Array(nRandom * d);
  for (let i = 0; i < R.length; i++) R[i] = rrng.normal();

  const record = (step: number): ClusteringRecord => {
    const cm = clusterMeasures(net);
    const outTrain = netOutputs(net, train.X, n);
    let loss = 0;
    for (let i = 0; i < n; i++) loss += logistic(train.y[i]! * outTrain[i]!);
    loss /= n;
    let vn = 0;
    let tdot = 0;
    for (let k = 0; k < d; k++) {
      vn += cm.vLin[k]! * cm.vLin[k]!;
      if (teacher) tdot += cm.vLin[k]! * teacher[k]!;
    }
    vn = Math.sqrt(vn);
    return {
      step,
      loss,
      trainAccuracy: accuracy(outTrain, train.y),
      testAccuracy: test ? accuracy(netOutputs(net, test.X, test.n), test.y) : null,
      coherencePlus: cm.plus.coherence,
      coherenceMinus: cm.minus.coherence,
      meanCosinePlus: cm.plus.meanCosine,
      meanCosineMinus: cm.minus.meanCosine,
      agreementTrain: linearAgreement(net, train.X, n, cm.vLin),
      agreementTest: test ? linearAgreement(net, test.X, test.n, cm.vLin) : null,
      agreementRandom: linearAgreement(net, R, nRandom, cm.vLin),
      regimeFraction: agreementRegime(net, train.X, n).fraction,
      teacherCosine: teacher && vn > 0 ? tdot / vn : null,
      groupPlus: cm.plus.size,
      groupMinus: cm.minus.size,
      vLinNorm: vn,
    };
  };

  const records: ClusteringRecord[] = [record(0)];
  let regimeFirstStep: number | null = null;
  let regimeStableFrom: number | null = null;
  let regimeSteps = 0;
  const noteRegime = (step: number, holds: boolean) => {
    if (holds) {
      regimeSteps++;
      regimeFirstStep ??= step;
      regimeStableFrom ??= step;
    } else regimeStableFrom = null;
  };

  const X = train.X;
  const y = train.y;
  const z = new Float64Array(m);
  const gW = new Float64Array(m * d);
  const gv = new Float64Array(m);
  const trainV = outputLayer === 'trained';
  for (let step = 0; step < epochs; step++) {
    gW.fill(0);
    gv.fill(0);
    let allAgree = true;
    for (let i = 0; i < n; i++) {
      const xo = i * d;
      let out = 0;
      let gp = 0;
      let gm = 0;
      for (let j = 0; j < m; j++) {
        const wo = j * d;
        let s = 0;
        for (let k = 0; k < d; k++) s += W[wo + k]! * X[xo + k]!;
        z[j] = s;
        out += v[j]! * (s > 0 ? s : alpha * s);
        const bit = s > 0 ? 1 : 2;
        if (v[j]! > 0) gp |= bit;
        else if (v[j]! < 0) gm |= bit;
      }
      if (gp === 3 || gm === 3) allAgree = false;
      const yi = y[i]!;
      // d/dN of log(1 + e^{−yN}) / n.
      const mg = yi * out;
      const g = (-yi / n) * (mg > 0 ? Math.exp(-mg) / (1 + Math.exp(-mg)) : 1 / (1 + Math.exp(mg)));
      for (let j = 0; j < m; j++) {
        const s = z[j]!;
        if (trainV) gv[j]! += g * (s > 0 ? s : alpha * s);
        const c = g * v[j]! * (s > 0 ? 1 : alpha);
        if (c === 0) continue;
        const wo = j * d;
        for (let k = 0; k < d; k++) gW[wo + k]! += c * X[xo + k]!;
      }
    }
    noteRegime(step, allAgree);
    for (let i = 0; i < W.length; i++) W[i]! -= lr * gW[i]!;
    if (trainV) for (let j = 0; j < m; j++) v[j]! -= lr * gv[j]!;
    for (let i = 0; i < W.length; i++) {
      if (!Number.isFinite(W[i]!)) throw new RuntimeFailure(`training diverged at step ${step + 1} (non-finite weights)`, 'lower --lr');
    }
    const done = step + 1;
    if (done % every === 0 || done === epochs) records.push(record(done));
    opts.onProgress?.(done, epochs);
  }
  noteRegime(epochs, agreementRegime(net, X, n).holds);

  const warnings = [...act.warnings];
  const final = records[records.length - 1]!;
  if (final.trainAccuracy < 1) warnings.push(`training accuracy is ${final.trainAccuracy.toFixed(4)} after ${epochs} steps: the net has not separated the data yet; try more --epochs or a larger --lr`);
  if (alpha === 0) {
    let dead = 0;
    for (let j = 0; j < m; j++) {
      let alive = false;
      for (let i = 0; i < n && !alive; i++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += W[j * d + k]! * X[i * d + k]!;
        if (s > 0) alive = true;
      }
      if (!alive) dead++;
    }
    if (dead > 0) warnings.push(`${dead} of ${m} ReLU neurons are dead at the end (inactive on every training point)`);
  }
  return {
    definition: CLUSTERING_DEFINITION,
    activation: act.name,
    alpha,
    d,
    m,
    n,
    nTest: test ? test.n : 0,
    nRandom,
    margin,
    labelNoise,
    epochs,
    lr,
    initScale,
    outputLayer,
    every,
    seed,
    separability,
    regimeFirstStep,
    regimeStableFrom,
    regimeSteps,
    records,
    initial: records[0]!,
    final,
    net: { d, m, W: Float64Array.from(W), v: Float64Array.from(v), alpha },
    vLin: collapsedLinear(net),
    teacher,
    warnings,
    elapsedMs: performance.now() - t0,
  };
}

const CSV_COLUMNS: [string, (r: ClusteringRecord) => number | null][] = [
  ['step', (r) => r.step],
  ['loss', (r) => r.loss],
  ['train_accuracy', (r) => r.trainAccuracy],
  ['test_accuracy', (r) => r.testAccuracy],
  ['coherence_plus', (r) => r.coherencePlus],
  ['coherence_minus', (r) => r.coherenceMinus],
  ['mean_cosine_plus', (r) => r.meanCosinePlus],
  ['mean_cosine_minus', (r) => r.meanCosineMinus],
  ['agreement_train', (r) => r.agreementTrain],
  ['agreement_test', (r) => r.agreementTest],
  ['agreement_random', (r) => r.agreementRandom],
  ['regime_fraction', (r) => r.regimeFraction],
  ['teacher_cosine', (r) => r.teacherCosine],
  ['group_plus', (r) => r.groupPlus],
  ['group_minus', (r) => r.groupMinus],
  ['vlin_norm', (r) => r.vLinNorm],
];

/** The time series as CSV (one row per record; empty cells for undefined values). */
export function clusteringCsv(res: ClusteringResult): string {
  return [CSV_COLUMNS.map((c) => c[0]).join(','), ...res.records.map((r) => csvLine(CSV_COLUMNS.map((c) => c[1](r))))].join('\n') + '\n';
}

