/**
 * Deep linear networks and the layer-geometry law (docs/theory.md) (Wang et al. 2023, "Understanding
 * Deep Representation Learning via Layerwise Feature Compression and Discrimination"; code
 * Heimine/PNC_DLN): a bias-free linear net f(x) = W_L ⋯ W_1 x trained by full-batch gradient
 * descent on the MSE to one-hot targets. After training, within-class compression C_l shrinks by a
 * roughly constant factor per hidden layer and discrimination D_l grows roughly linearly.
 *
 * Conventions (those of the authors' code):
 * - depth L = number of weight matrices; W_l is out×in (row-major), W_1: width×d, hidden W_l:
 *   width×width, W_L: K×width. Features h_0 = x (input), h_l = W_l h_{l−1}; l = 1..L−1 are the
 *   hidden layers, h_L the network output.
 * - loss = (1/N) Σ_i ‖α·f(x_i) − y_i‖² (sum over outputs, mean over samples), α the output scale
 *   (the authors' notebook uses α = 100, their training script α = 1).
 * - orthogonal init scaled by ξ (`initScale`): hidden weights are ξ·(Haar-orthogonal), W_1
 *   ξ·(orthonormal columns, or rows when width < d), W_L ξ·(K×width with orthonormal rows; the
 *   authors pad a K×K orthogonal matrix with zeros, which is the same in distribution because the
 *   hidden weights are Haar).
 * - synthetic "nearly orthogonal" data: N = K·n orthonormal vectors in R^d (first N columns of a
 *   Haar-orthogonal matrix) plus a Gaussian perturbation Δ scaled to ‖Δ‖_F = `perturbation`
 *   (authors: 1); class k is the k-th block of n rows.
 *
 * Two engines: plain float64 JavaScript (for the synthetic sizes, N ≤ a few hundred and widths of
 * tens; exact enough to drive the loss to 1e-12) and TF.js (float32 matmuls on the wasm backend,
 * for Fashion-MNIST-sized inputs).
 *
 * This file: the definitions, the network, the synthetic data, the float64 algebra and the two
 * training engines; geometry.ts measures a trained net; experiment.ts runs the whole experiment
 * (synthetic or on a dataset subset).
 */
import { RuntimeFailure, UsageError } from '../../errors.js';
import { transpose } from '../../linalg/dense.js';
import { dot } from '../../linalg/kernels.js';
import { Rng } from '../../util/rng.js';
import type * as tfTypes from '../../runtime/tf-types.js';
import { loadTf } from '../../runtime/backend.js';
import { gaussianMatrix, orthonormalColumns } from '../../metrics/baseline/subspaces.js';
import { deriveSeed } from '../../util/seed.js';

// ---------------------------------------------------------------------------------------------
// Definitions carried in every result (change them here; the code below follows them)

export const DEEP_LINEAR_DEFINITIONS = {
  network:
    'bias-free deep linear network f(x) = W_L⋯W_1 x, L = depth = number of weight matrices; features h_0 = x (layer 0, input), h_l = W_l h_{l−1} (l = 1..L−1 hidden, l = L output)',
  loss: 'MSE to one-hot targets: (1/N) Σ_i ‖α·f(x_i) − y_i‖² (summed over the K outputs, averaged over the N samples; α = output scale), full-batch gradient descent',
  compression: 'C_l = tr(Σ_W)/tr(Σ_B) of h_l, Σ_W over the total N, Σ_B = (1/K)Σ_k (μ_k − μ_G)(μ_k − μ_G)ᵀ (docs/metrics/geometry.md, Wang et al. 2023)',
  discrimination: 'D_l = 1 − max_{k≠l} cos(μ_k, μ_l), uncentred class means, signed cosine (docs/metrics/geometry.md)',
  compressionFit: 'least-squares line through (l, ln C_l) over the hidden layers l = 1..L−1; fitted ratio = exp(slope) (the constant factor per layer)',
  compressionRatios: 'C_l / C_{l−1} for l = 1..L (every consecutive pair, input→first hidden and last hidden→output included)',
  discriminationFit: 'least-squares line through (l, D_l) over the hidden layers l = 1..L−1: slope = change of D per layer, R² of the line',
  epsilon:
    'ε (re-derivation, not a quantity of the paper): for each weight W_l except the last (l = 1..L−1; the K×width last layer has only K singular values), ε_l = mean of its singular values beyond the K largest (σ_{K+1}, …, σ_min(out,in)); ε = median over l of ε_l',
  predictedRatio:
    'numerical re-derivation in docs/metrics/geometry.md (a prediction to compare with, not a constant): ρ = ε² / (n/α²)^{1/L}, n = samples per class (N/K), α = output scale of the loss, L = depth. (n/α²)^{1/L} is the squared top singular value of each layer of a balanced net whose product maps orthonormal inputs to targets/α',
  predictedRatioFromWeights: 'median over l = 1..L−1 of (ε_l / s_l)², s_l = mean of the K largest singular values of W_l (the same law with the trained weights\' measured large singular values instead of (n/α²)^{1/(2L)})',
  syntheticData:
    'nearly orthogonal data (authors\' orthogonal_dataset): N = K·n orthonormal vectors in R^d plus Gaussian Δ with ‖Δ‖_F = perturbation; class k = rows k·n .. (k+1)·n − 1',
  init: 'orthogonal init scaled by ξ: W_1 = ξ·(orthonormal columns, or rows when width < d), hidden W_l = ξ·Haar-orthogonal, W_L = ξ·(K×width, orthonormal rows)',
} as const;

// ---------------------------------------------------------------------------------------------
// Network

export interface DeepLinearNet {
  /** Layer sizes [d, width, …, width, K], length L+1. */
  dims: number[];
  /** W_l (l = 1..L) as weights[l−1], dims[l]×dims[l−1] row-major. */
  weights: Float64Array[];
}

export function netDepth(net: DeepLinearNet): number {
  return net.weights.length;
}

/** dims = [d, width ×(L−1), K]. */
export function layerDims(d: number, width: number, K: number, depth: number): number[] {
  if (!Number.isInteger(depth) || depth < 2) throw new UsageError(`depth must be an integer ≥ 2 (at least one hidden layer), got ${depth}`);
  for (const [name, v] of [['input dimension', d], ['width', width], ['classes', K]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`);
  }
  return [d, ...new Array<number>(depth - 1).fill(width), K];
}

/** out×in, scaled: orthonormal columns when out ≥ in, orthonormal rows otherwise. */
export function semiOrthogonal(out: number, inp: number, scale: number, rng: Rng): Float64Array {
  const W = new Float64Array(out * inp);
  if (out >= inp) {
    const Q = orthonormalColumns(gaussianMatrix(out, inp, rng), out, inp); // out×inp
    for (let i = 0; i < W.length; i++) W[i] = scale * Q[i]!;
  } else {
    const Q = orthonormalColumns(gaussianMatrix(inp, out, rng), inp, out); // inp×out; W = Qᵀ
    for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) W[i * inp + j] = scale * Q[j * out + i]!;
  }
  return W;
}

/** Orthogonal init scaled by `scale` (see DEEP_LINEAR_DEFINITIONS.init), seeded. */
export function orthogonalInit(dims: readonly number[], scale: number, seed: number): DeepLinearNet {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new UsageError(`init scale must be a positive number, got ${scale}`);
  const weights: Float64Array[] = [];
  for (let l = 1; l < dims.length; l++) weights.push(semiOrthogonal(dims[l]!, dims[l - 1]!, scale, new Rng(deriveSeed(seed, 7, l))));
  return { dims: [...dims], weights };
}

export function cloneNet(net: DeepLinearNet): DeepLinearNet {
  return { dims: [...net.dims], weights: net.weights.map((w) => new Float64Array(w)) };
}

// ---------------------------------------------------------------------------------------------
// Data

export interface LabelledData {
  /** N×d row-major. */
  X: Float64Array;
  N: number;
  d: number;
  K: number;
  labels: Int32Array;
  classNames?: string[];
}

export interface SyntheticOptions {
  K: number;
  /** Samples per class n. */
  perClass: number;
  d: number;
  /** ‖Δ‖_F of the Gaussian perturbation (authors: 1). */
  perturbation?: number;
  seed: number;
}

/** Nearly orthogonal data as in the authors' synthetic check (see DEEP_LINEAR_DEFINITIONS.syntheticData). */
export function nearlyOrthogonalData(o: SyntheticOptions): LabelledData {
  const { K, perClass: n, d } = o;
  for (const [name, v] of [['classes', K], ['samples per class', n], ['input dimension', d]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`);
  }
  if (K < 2) throw new UsageError(`need at least 2 classes, got ${K}`);
  const N = K * n;
  if (N > d) throw new UsageError(`nearly orthogonal data needs N = K·n ≤ d (got ${K}·${n} = ${N} > d = ${d})`, 'raise --dim or lower --per-class / --classes');
  const pert = o.perturbation ?? 1;
  if (!(pert >= 0) || !Number.isFinite(pert)) throw new UsageError(`perturbation must be ≥ 0, got ${pert}`);
  const rng = new Rng(deriveSeed(o.seed, 11));
  const Q = orthonormalColumns(gaussianMatrix(d, N, rng), d, N); // d×N: column i is sample i
  const X = new Float64Array(N * d);
  for (let i = 0; i < N; i++) for (let j = 0; j < d; j++) X[i * d + j] = Q[j * N + i]!;
  if (pert > 0) {
    const D = gaussianMatrix(N, d, new Rng(deriveSeed(o.seed, 12)));
    let s = 0;
    for (const v of D) s += v * v;
    const f = pert / Math.sqrt(s);
    for (let i = 0; i < X.length; i++) X[i]! += f * D[i]!;
  }
  const labels = new Int32Array(N);
  for (let i = 0; i < N; i++) labels[i] = Math.floor(i / n);
  return { X, N, d, K, labels };
}

/** N×K one-hot targets. */
export function oneHot(labels: Int32Array, K: number): Float64Array {
  const Y = new Float64Array(labels.length * K);
  labels.forEach((k, i) => {
    if (!(k >= 0 && k < K)) throw new RuntimeFailure(`label ${k} of sample ${i} is outside 0..${K - 1}`);
    Y[i * K + k] = 1;
  });
  return Y;
}

// ---------------------------------------------------------------------------------------------
// Float64 algebra (small matrices only: the synthetic sizes)

/** C = A Bᵀ, A m×k, B n×k (row-major dot products). */
function mulABt(A: Float64Array, B: Float64Array, m: number, k: number, n: number): Float64Array {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) C[i * n + j] = dot(A, B, k, i * k, j * k);
  return C;
}

/** Features h_0 = X, h_1, …, h_L (each N×dims[l]) in float64. */
export function forward64(net: DeepLinearNet, X: Float64Array, N: number): Float64Array[] {
  const { dims, weights } = net;
  if (X.length !== N * dims[0]!) throw new RuntimeFailure(`forward: ${X.length} values for ${N}×${dims[0]}`);
  const H: Float64Array[] = [X];
  for (let l = 1; l < dims.length; l++) H.push(mulABt(H[l - 1]!, weights[l - 1]!, N, dims[l - 1]!, dims[l]!));
  return H;
}

/** (1/N) Σ ‖α·out − y‖². */
export function mseLoss(out: Float64Array, Y: Float64Array, N: number, alpha: number): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) {
    const r = alpha * out[i]! - Y[i]!;
    s += r * r;
  }
  return s / N;
}

/** The loss and its gradient with respect to each W_l (same shapes as the weights), float64 backprop. */
export function mseLossAndGradients(net: DeepLinearNet, X: Float64Array, Y: Float64Array, N: number, alpha = 1): { loss: number; grads: Float64Array[]; features: Float64Array[] } {
  const { dims, weights } = net;
  const L = weights.length;
  const K = dims[L]!;
  if (Y.length !== N * K) throw new RuntimeFailure(`targets: ${Y.length} values for ${N}×${K}`);
  const H = forward64(net, X, N);
  const out = H[L]!;
  const loss = mseLoss(out, Y, N, alpha);
  // dL/d out = (2α/N)(α·out − Y)
  let G: Float64Array = new Float64Array(N * K);
  for (let i = 0; i < G.length; i++) G[i] = ((2 * alpha) / N) * (alpha * out[i]! - Y[i]!);
  const grads = new Array<Float64Array>(L);
  for (let l = L; l >= 1; l--) {
    const out = dims[l]!;
    const inp = dims[l - 1]!;
    // dW_l = Gᵀ H_{l−1} (out×in); G ← G W_l (N×in). Both as A·Bᵀ products of transposes.
    grads[l - 1] = mulABt(transpose(G, N, out), transpose(H[l - 1]!, N, inp), out, N, inp);
    if (l > 1) G = mulABt(G, transpose(weights[l - 1]!, out, inp), N, out, inp);
  }
  return { loss, grads, features: H };
}

// ---------------------------------------------------------------------------------------------
// Training

export type Engine = 'float64' | 'tfjs';

export interface TrainOptions {
  lr: number;
  /** Maximum number of full-batch steps (= epochs). */
  steps: number;
  alpha?: number;
  /** Stop once the loss is below this (default 1e-12 for float64, 1e-9 for tfjs). */
  tol?: number;
  engine?: Engine;
  /** Learning-rate schedule: constant, or cosine from lr down to lr/10 over `steps` (the authors' notebook). */
  schedule?: 'constant' | 'cosine';
  onProgress?: (step: number, steps: number, loss: number) => void;
}

export interface TrainResult {
  net: DeepLinearNet;
  engine: Engine;
  stepsRun: number;
  initialLoss: number;
  finalLoss: number;
  converged: boolean;
  /** Loss at steps 0, 1, 2, 5, 10, 20, 50, … and the last. */
  lossHistory: { step: number; loss: number }[];
  elapsedMs: number;
}

function checkTrainOptions(o: TrainOptions): void {
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new UsageError(`learning rate must be > 0, got ${o.lr}`);
  if (!Number.isInteger(o.steps) || o.steps < 0) throw new UsageError(`steps must be a non-negative integer, got ${o.steps}`);
  const a = o.alpha ?? 1;
  if (!(a > 0) || !Number.isFinite(a)) throw new UsageError(`output scale α must be > 0, got ${a}`);
}

function lrAt(o: TrainOptions, step: number): number {
  if ((o.schedule ?? 'constant') === 'constant' || o.steps <= 1) return o.lr;
  const min = o.lr / 10;
  return min + 0.5 * (o.lr - min) * (1 + Math.cos((Math.PI * step) / o.steps));
}

function logStep(step: number): boolean {
  if (step <= 2) return true;
  const p = Math.pow(10, Math.floor(Math.log10(step)));
  return step === p || step === 2 * p || step === 5 * p;
}

function diverged(step: number, loss: number, lr: number): RuntimeFailure {
  return new RuntimeFailure(
    `training diverged: the loss is ${loss} at step ${step} (learning rate ${lr})`,
    `use a smaller learning rate, e.g. --lr ${Number((lr / 10).toPrecision(3))} (or a smaller --init-scale / --alpha)`,
  );
}

/** Full-batch gradient descent on the MSE loss; returns a trained copy of `net`. */
export async function trainDeepLinear(init: DeepLinearNet, data: LabelledData, o: TrainOptions): Promise<TrainResult> {
  checkTrainOptions(o);
  if (init.dims[0] !== data.d) throw new UsageError(`network input ${init.dims[0]} ≠ data dimension ${data.d}`);
  if (init.dims[init.dims.length - 1] !== data.K) throw new UsageError(`network output ${init.dims[init.dims.length - 1]} ≠ number of classes ${data.K}`);
  const engine = o.engine ?? 'float64';
  return engine === 'tfjs' ? trainTf(init, data, o) : train64(init, data, o);
}

async function train64(init: DeepLinearNet, data: LabelledData, o: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const alpha = o.alpha ?? 1;
  const tol = o.tol ?? 1e-12;
  const net = cloneNet(init);
  const Y = oneHot(data.labels, data.K);
  const history: { step: number; loss: number }[] = [];
  let initialLoss = NaN;
  let loss = NaN;
  let step = 0;
  let lastYield = performance.now();
  for (; ; step++) {
    const r = mseLossAndGradients(net, data.X, Y, data.N, alpha);
    loss = r.loss;
    if (step === 0) initialLoss = loss;
    if (!Number.isFinite(loss)) throw diverged(step, loss, lrAt(o, Math.max(0, step - 1)));
    if (logStep(step)) history.push({ step, loss });
    if (loss < tol || step >= o.steps) break;
    const lr = lrAt(o, step);
    for (let l = 0; l < net.weights.length; l++) {
      const W = net.weights[l]!;
      const g = r.grads[l]!;
      for (let i = 0; i < W.length; i++) W[i]! -= lr * g[i]!;
    }
    if (o.onProgress && performance.now() - lastYield > 200) {
      o.onProgress(step, o.steps, loss);
      lastYield = performance.now();
      await new Promise<void>((res) => setImmediate(res));
    }
  }
  if (history[history.length - 1]?.step !== step) history.push({ step, loss });
  o.onProgress?.(step, o.steps, loss);
  return { net, engine: 'float64', stepsRun: step, initialLoss, finalLoss: loss, converged: loss < tol, lossHistory: history, elapsedMs: performance.now() - t0 };
}

/**
 * The same gradient descent with TF.js float32 matmuls. Backprop is written out (not autodiff)
 * so that every product is a plain A·B: the wasm backend's transposed-operand matmuls are an
 * order of magnitude slower. Weights are kept transposed (Wᵀ, in×out) so the forward pass is H·Wᵀ.
 */
async function trainTf(init: DeepLinearNet, data: LabelledData, o: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const { tf } = await loadTf();
  const alpha = o.alpha ?? 1;
  const tol = o.tol ?? 1e-9;
  const { dims } = init;
  const L = init.weights.length;
  const N = data.N;
  let Wt: tfTypes.Tensor2D[] = init.weights.map((w, l) => tf.tensor2d(Float32Array.from(transpose(w, dims[l + 1]!, dims[l]!)), [dims[l]!, dims[l + 1]!]));
  const X = tf.tensor2d(Float32Array.from(data.X), [N, data.d]);
  const XT = tf.transpose(X);
  const Y = tf.tensor2d(Float32Array.from(oneHot(data.labels, data.K)), [N, data.K]);
  /** One step: returns the loss before the update and the updated weights (new tensors). */
  const step = (lr: number): { loss: tfTypes.Scalar; next: tfTypes.Tensor2D[] } =>
    tf.tidy(() => {
      const H: tfTypes.Tensor2D[] = [X];
      for (let l = 0; l < L; l++) H.push(tf.matMul(H[l]!, Wt[l]!));
      const R = tf.sub(tf.mul(H[L]!, alpha), Y);
      const loss = tf.div(tf.sum(tf.square(R)), N) as tfTypes.Scalar;
      let G = tf.mul(R, (2 * alpha) / N) as tfTypes.Tensor2D;
      const next = new Array<tfTypes.Tensor2D>(L);
      for (let l = L; l >= 1; l--) {
        const HT = l === 1 ? XT : tf.transpose(H[l - 1]!);
        const dWt = tf.matMul(HT, G); // in×out
        if (l > 1) G = tf.matMul(G, tf.transpose(Wt[l - 1]!)); // N×in
        next[l - 1] = tf.sub(Wt[l - 1]!, tf.mul(dWt, lr));
      }
      return { loss, next };
    });
  const lossOnly = (): number =>
    tf.tidy(() => {
      let h: tfTypes.Tensor2D = X;
      for (const W of Wt) h = tf.matMul(h, W);
      return tf.div(tf.sum(tf.square(tf.sub(tf.mul(h, alpha), Y))), N);
    }).dataSync()[0]!;
  const history: { step: number; loss: number }[] = [];
  let initialLoss = NaN;
  let loss = NaN;
  let s = 0;
  let lastYield = performance.now();
  try {
    for (; ; s++) {
      if (s >= o.steps) {
        loss = lossOnly();
        if (s === 0) initialLoss = loss;
        if (!Number.isFinite(loss)) throw diverged(s, loss, lrAt(o, Math.max(0, s - 1)));
        break;
      }
      const r = step(lrAt(o, s));
      loss = r.loss.dataSync()[0]!;
      r.loss.dispose();
      if (s === 0) initialLoss = loss;
      if (!Number.isFinite(loss)) {
        for (const t of r.next) t.dispose();
        throw diverged(s, loss, lrAt(o, Math.max(0, s - 1)));
      }
      if (logStep(s)) history.push({ step: s, loss });
      if (loss < tol) {
        // Converged before this update: keep the weights the loss was measured on.
        for (const t of r.next) t.dispose();
        break;
      }
      for (const t of Wt) t.dispose();
      Wt = r.next;
      if (o.onProgress && performance.now() - lastYield > 200) {
        o.onProgress(s, o.steps, loss);
        lastYield = performance.now();
        await new Promise<void>((res) => setImmediate(res));
      }
    }
    if (history[history.length - 1]?.step !== s) history.push({ step: s, loss });
    o.onProgress?.(s, o.steps, loss);
    const weights = Wt.map((W, l) => transpose(Float64Array.from(W.dataSync()), dims[l]!, dims[l + 1]!));
    return { net: { dims: [...dims], weights }, engine: 'tfjs', stepsRun: s, initialLoss, finalLoss: loss, converged: loss < tol, lossHistory: history, elapsedMs: performance.now() - t0 };
  } finally {
    for (const W of Wt) W.dispose();
    X.dispose();
    XT.dispose();
    Y.dispose();
  }
}

/** Features h_0..h_L; TF.js matmuls for the tfjs engine (then widened to float64), float64 JS otherwise. */
export async function features(net: DeepLinearNet, X: Float64Array, N: number, engine: Engine = 'float64'): Promise<Float64Array[]> {
  if (engine === 'float64') return forward64(net, X, N);
  const { tf } = await loadTf();
  const { dims } = net;
  const out: Float64Array[] = [X];
  let h: tfTypes.Tensor = tf.tensor2d(Float32Array.from(X), [N, dims[0]!]);
  try {
    for (let l = 1; l < dims.length; l++) {
      const W = tf.tensor2d(Float32Array.from(transpose(net.weights[l - 1]!, dims[l]!, dims[l - 1]!)), [dims[l - 1]!, dims[l]!]);
      const next = tf.matMul(h as tfTypes.Tensor2D, W);
      W.dispose();
      h.dispose();
      h = next;
      out.push(Float64Array.from(h.dataSync()));
    }
  } finally {
    h.dispose();
  }
  return out;
}

