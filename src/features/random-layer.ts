/**
 * One random layer φ(x) = σ(Wx), W ∈ R^{D×d} i.i.d. N(0,1), frozen, no bias (docs/theory.md#theory-phase).
 *
 * W is drawn row by row from one seeded stream, so the layer of width D is the first D rows of
 * the layer of any width D' > D with the same seed. Separability is monotone along such nested
 * layers (a readout of the narrow layer, padded with zeros, reads the wide one), which is what
 * lets the phase-transition search bisect on D.
 */
import { UsageError } from '../errors.js';
import { matMul } from '../linalg/dense.js';
import { matmul } from '../linalg/ort-ops.js';
import { Rng } from '../util/rng.js';
import { deriveSeed, STREAM } from '../util/seed.js';

export const ACTIVATIONS = ['quadratic', 'relu', 'leaky-relu', 'elu', 'gelu', 'tanh'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** PyTorch's defaults (nn.LeakyReLU, nn.ELU); the authors' code passes torch activation modules. */
export const LEAKY_SLOPE = 0.01;
export const ELU_ALPHA = 1;

export function parseActivation(s: string): Activation {
  const a = s.trim().toLowerCase().replace(/_/g, '-');
  const alias: Record<string, Activation> = { square: 'quadratic', quad: 'quadratic', leaky: 'leaky-relu', leakyrelu: 'leaky-relu' };
  const v = alias[a] ?? a;
  if (!(ACTIVATIONS as readonly string[]).includes(v)) {
    throw new UsageError(`unknown activation \`${s}\``, `choose from ${ACTIVATIONS.join(', ')}`);
  }
  return v as Activation;
}

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * erf(x) from the series (2/√π) e^{−x²} Σ_n (2x²)^n x / (1·3·…·(2n+1)): every term is positive,
 * so there is no cancellation and the result is accurate to a few ulps; |x| ≥ 6 rounds to ±1.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  const x2 = 2 * ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 500; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  const v = TWO_OVER_SQRT_PI * Math.exp(-ax * ax) * sum;
  return x < 0 ? -v : v;
}

/** The activation as a scalar function (GELU is the exact erf form, as in PyTorch). */
export function activationFn(a: Activation): (z: number) => number {
  switch (a) {
    case 'quadratic':
      return (z) => z * z;
    case 'relu':
      return (z) => (z > 0 ? z : 0);
    case 'leaky-relu':
      return (z) => (z > 0 ? z : LEAKY_SLOPE * z);
    case 'elu':
      return (z) => (z > 0 ? z : ELU_ALPHA * Math.expm1(z));
    case 'gelu':
      return (z) => 0.5 * z * (1 + erf(z / Math.SQRT2));
    case 'tanh':
      return Math.tanh;
  }
}

export interface RandomLayerOptions {
  /** Width (number of units). */
  D: number;
  /** Input dimension. */
  d: number;
  activation: Activation;
  seed: number;
}

export interface RandomLayer {
  readonly D: number;
  readonly d: number;
  readonly activation: Activation;
  /** D×d row-major, i.i.d. N(0,1). */
  readonly W: Float64Array;
  /** σ(X Wᵀ) for X n×d row-major (n×D out, same precision as X), through onnxruntime. */
  apply(X: Float64Array, n: number): Promise<Float64Array>;
  apply(X: Float32Array, n: number): Promise<Float32Array>;
}

/** The first D rows of the seeded Gaussian stream (see the module note on nesting). */
export function gaussianLayerWeights(D: number, d: number, seed: number): Float64Array {
  const rng = new Rng(deriveSeed(seed, STREAM.layer));
  const W = new Float64Array(D * d);
  for (let i = 0; i < W.length; i++) W[i] = rng.normal();
  return W;
}

export function randomLayer(opts: RandomLayerOptions): RandomLayer {
  const { D, d, activation, seed } = opts;
  if (!Number.isInteger(D) || D < 1) throw new UsageError(`layer width D must be a positive integer, got ${D}`);
  if (!Number.isInteger(d) || d < 1) throw new UsageError(`input dimension d must be a positive integer, got ${d}`);
  const W = gaussianLayerWeights(D, d, seed);
  const Wt64 = new Float64Array(d * D);
  for (let i = 0; i < D; i++) for (let j = 0; j < d; j++) Wt64[j * D + i] = W[i * d + j]!;
  let Wt32: Float32Array | null = null;
  const f = activationFn(activation);
  async function apply(X: Float64Array, n: number): Promise<Float64Array>;
  async function apply(X: Float32Array, n: number): Promise<Float32Array>;
  async function apply(X: Float32Array | Float64Array, n: number): Promise<Float32Array | Float64Array> {
    if (X.length !== n * d) throw new UsageError(`random layer: input has ${X.length} values, expected ${n}×${d}`);
    let Z: Float32Array | Float64Array;
    if (X instanceof Float64Array) {
      Z = await matmul(X, Wt64, n, d, D);
    } else {
      Wt32 ??= Float32Array.from(Wt64);
      Z = await matmul(X, Wt32, n, d, D);
    }
    for (let i = 0; i < Z.length; i++) Z[i] = f(Z[i]!);
    return Z;
  }
  return { D, d, activation, W, apply };
}

/** G = W U (D×r) for a d×r basis U: the rows g_i = Uᵀw_i of the exact quadratic test. */
export function projectedWeights(W: Float64Array, D: number, d: number, U: Float64Array, r: number): Float64Array {
  return matMul(W.subarray(0, D * d), U, D, d, r);
}
