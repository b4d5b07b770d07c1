/**
 * Limited-memory BFGS (Nocedal & Wright, Numerical Optimization, alg. 7.4/7.5) with a
 * backtracking line search that accepts a step on the Armijo condition or an approximate Wolfe
 * condition (a step that keeps f within rounding of its value and flattens the slope; it lets the
 * iteration keep going at the rounding floor of f, where Armijo alone stalls). One
 * implementation for the whole toolkit: the linear probe's softmax regression (an async
 * onnxruntime objective) and the low-rank theory's bottleneck fit (a plain synchronous one) run
 * the same iteration, written once as a generator that yields the points it needs evaluated.
 *
 * Written by hand: ml-matrix has no optimiser, and the objectives here are either onnxruntime
 * graphs or closed-form float64 loops that a general library could not call without copies.
 */
import { RuntimeFailure } from '../errors.js';
import { axpy, dot, infNorm } from './kernels.js';

export interface Evaluation {
  loss: number;
  grad: Float64Array;
}

/** f and ∇f at θ, asynchronously (e.g. an onnxruntime graph). */
export interface Objective {
  evaluate(theta: Float64Array): Promise<Evaluation>;
}

export interface LbfgsOptions {
  maxIter: number;
  /** Stop (converged) when ‖∇f‖∞ ≤ gtol. */
  gtol: number;
  /** Curvature pairs kept. */
  memory: number;
  /** The message when f becomes non-finite (the caller knows what it means). */
  nonFiniteMessage?: string;
}

export type LbfgsStatus = 'converged' | 'stalled' | 'max-iterations';

export interface LbfgsResult {
  x: Float64Array;
  loss: number;
  grad: Float64Array;
  iterations: number;
  evaluations: number;
  status: LbfgsStatus;
}

/** The iteration; yields each point to evaluate and is sent back its loss and gradient. */
function* iterate(x0: Float64Array, opts: LbfgsOptions): Generator<Float64Array, LbfgsResult, Evaluation> {
  let x: Float64Array = new Float64Array(x0);
  let { loss: f, grad: g } = yield x;
  let evaluations = 1;
  const S: Float64Array[] = [];
  const Yv: Float64Array[] = [];
  const rho: number[] = [];
  let status: LbfgsStatus = 'max-iterations';
  let iter = 0;
  for (; iter < opts.maxIter; iter++) {
    if (!Number.isFinite(f)) throw new RuntimeFailure(opts.nonFiniteMessage ?? 'L-BFGS: the objective became non-finite');
    if (infNorm(g) <= opts.gtol) {
      status = 'converged';
      break;
    }
    // Two-loop recursion; scalars hoisted out of the inner loops so they stay monomorphic.
    const q = new Float64Array(g);
    const alpha = new Float64Array(S.length);
    for (let i = S.length - 1; i >= 0; i--) {
      const ai = rho[i]! * dot(S[i]!, q);
      alpha[i] = ai;
      axpy(-ai, Yv[i]!, q);
    }
    let gamma: number;
    if (S.length) {
      const yl = Yv[Yv.length - 1]!;
      gamma = dot(S[S.length - 1]!, yl) / dot(yl, yl);
    } else {
      gamma = 1 / Math.max(1, Math.sqrt(dot(g, g)));
    }
    for (let j = 0; j < q.length; j++) q[j] = -gamma * q[j]!;
    // q holds −r of the textbook recursion from here on, so it ends as the descent direction −H·g.
    for (let i = 0; i < S.length; i++) {
      const beta = -rho[i]! * dot(Yv[i]!, q);
      axpy(-(alpha[i]! - beta), S[i]!, q);
    }
    const dir = q;
    let gd = dot(g, dir);
    if (!(gd < 0)) {
      S.length = 0;
      Yv.length = 0;
      rho.length = 0;
      const s = 1 / Math.max(1, Math.sqrt(dot(g, g)));
      for (let j = 0; j < dir.length; j++) dir[j] = -g[j]! * s;
      gd = dot(g, dir);
    }
    let t = 1;
    let accepted: { x: Float64Array; f: number; g: Float64Array } | null = null;
    for (let ls = 0; ls < 40; ls++) {
      const xn = new Float64Array(x.length);
      for (let j = 0; j < x.length; j++) xn[j] = x[j]! + t * dir[j]!;
      const r = yield xn;
      evaluations++;
      const armijo = r.loss <= f + 1e-4 * t * gd;
      const slope = dot(r.grad, dir);
      const approxWolfe = r.loss <= f + 1e-6 * Math.abs(f) && slope >= 0.9 * gd && slope <= -0.8 * gd;
      if (Number.isFinite(r.loss) && (armijo || approxWolfe)) {
        accepted = { x: xn, f: r.loss, g: r.grad };
        break;
      }
      t *= 0.5;
    }
    if (!accepted) {
      if (S.length) {
        // The quasi-Newton model misled us; retry once from steepest descent.
        S.length = 0;
        Yv.length = 0;
        rho.length = 0;
        continue;
      }
      status = 'stalled';
      break;
    }
    const s = new Float64Array(x.length);
    const y = new Float64Array(x.length);
    for (let j = 0; j < x.length; j++) {
      s[j] = accepted.x[j]! - x[j]!;
      y[j] = accepted.g[j]! - g[j]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      S.push(s);
      Yv.push(y);
      rho.push(1 / sy);
      if (S.length > opts.memory) {
        S.shift();
        Yv.shift();
        rho.shift();
      }
    }
    x = accepted.x;
    f = accepted.f;
    g = accepted.g;
  }
  return { x, loss: f, grad: g, iterations: iter, evaluations, status };
}

/** Minimises an asynchronous objective from x0. */
export async function lbfgs(obj: Objective, x0: Float64Array, opts: LbfgsOptions): Promise<LbfgsResult> {
  const it = iterate(x0, opts);
  let step = it.next();
  while (!step.done) step = it.next(await obj.evaluate(step.value));
  return step.value;
}

/** The same iteration for a synchronous objective (closed-form float64 losses). */
export function lbfgsSync(evaluate: (theta: Float64Array) => Evaluation, x0: Float64Array, opts: LbfgsOptions): LbfgsResult {
  const it = iterate(x0, opts);
  let step = it.next();
  while (!step.done) step = it.next(evaluate(step.value));
  return step.value;
}
