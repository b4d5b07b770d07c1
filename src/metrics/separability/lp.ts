/**
 * Exact linear separability (docs/metrics/separability.md#lp_separable_fraction) with HiGHS (compiled to wasm).
 *
 * Feasibility: two finite sets are strictly linearly separable iff the LP
 *   find w ∈ R^d, b ∈ R : y_i (wᵀx_i + b) ≥ 1  (y = +1 on A, −1 on B)
 * is feasible (free variables, zero objective). For separable pairs, the hard-margin SVM
 *   minimise ½‖w‖²  subject to the same constraints
 * is solved as a QP; its optimum gives the geometric margin 1/‖w*‖: the distance from the
 * maximum-margin hyperplane to the nearest point of either class (half the gap between the
 * classes), in the coordinates the points were given in (margins are not affine-invariant).
 *
 * The model goes to HiGHS as CPLEX LP text, built as one string chunk per constraint and joined
 * once; a size limit on (m+n)·d turns pathological inputs into `skipped: too large` instead of a
 * solve that blocks the (single) JavaScript thread for minutes.
 */
import type { Highs } from 'highs';
import { RuntimeFailure, errorMessage } from '../../errors.js';
import { discardHighs, loadHighs } from '../../linalg/highs.js';
import type { FloatArray } from '../../linalg/ort-ops.js';

export interface LpOptions {
  /** Also solve the hard-margin SVM QP for separable pairs. Default true. */
  margin?: boolean;
  /** Skip (status `skipped: too large`) when (m+n)·d exceeds this. Default 2e6. */
  maxSize?: number;
  /** HiGHS wall-clock limit per solve, seconds. Default 60. */
  timeLimitS?: number;
}

export interface LpResult {
  /** true/false when HiGHS proved it; null when skipped or stopped by a limit. */
  separable: boolean | null;
  /** Geometric margin 1/‖w*‖ of the hard-margin SVM, for separable pairs. */
  margin?: number;
  /** HiGHS model status of the feasibility LP, or `skipped: …`. */
  status: string;
  /** HiGHS status of the margin QP, when it ran. */
  marginStatus?: string;
  /**
   * min_i y_i(wᵀx_i + b) of the returned solution recomputed in float64 (≥ 1 up to the solver's
   * tolerance): a separable answer is checked, not just trusted; at ≤ 0 the answer is null.
   */
  minSlack?: number;
  /** A separating direction w (LP solution, or the SVM normal when the margin was computed). */
  w?: number[];
  b?: number;
  m: number;
  n: number;
  d: number;
}

type Solution = ReturnType<Highs['solve']>;

const INFEASIBLE = new Set(['Infeasible', 'Primal infeasible or unbounded']);
const LIMITS = new Set(['Time limit reached', 'Iteration limit reached', 'Bound on objective reached', 'Target for objective reached']);

/** Shortest text that reads back as the same double (JS's own number formatting). */
function num(v: number): string {
  return String(Math.abs(v));
}

/** The constraints of the separability LP as CPLEX LP text. */
export function separabilityLpText(A: FloatArray, B: FloatArray, m: number, n: number, d: number, objective: 'zero' | 'margin'): string {
  const chunks: string[] = [];
  if (objective === 'margin') {
    const sq: string[] = [];
    for (let j = 0; j < d; j++) sq.push(`w${j}^2`);
    chunks.push(`Minimize\n obj: [ ${sq.join(' + ')} ] / 2\nSubject To\n`);
  } else {
    chunks.push('Minimize\n obj:\nSubject To\n');
  }
  const row = (X: FloatArray, i: number, y: 1 | -1, name: string): void => {
    const parts: string[] = [` ${name}:`];
    let terms = 0;
    for (let j = 0; j < d; j++) {
      const v = y * X[i * d + j]!;
      if (v === 0) continue;
      parts.push(`${v < 0 ? ' -' : ' +'} ${num(v)} w${j}`);
      // Keep lines short: some LP readers limit line length; a constraint may span lines.
      if (++terms % 16 === 0) parts.push('\n  ');
    }
    parts.push(y > 0 ? ' + b >= 1\n' : ' - b >= 1\n');
    chunks.push(parts.join(''));
  };
  for (let i = 0; i < m; i++) row(A, i, 1, `a${i}`);
  for (let i = 0; i < n; i++) row(B, i, -1, `b${i}`);
  chunks.push('Bounds\n');
  for (let j = 0; j < d; j++) chunks.push(` w${j} free\n`);
  chunks.push(' b free\nEnd\n');
  return chunks.join('');
}

function solve(highs: Highs, text: string, timeLimitS: number, what: string): Solution {
  try {
    return highs.solve(text, { output_flag: false, time_limit: timeLimitS });
  } catch (e) {
    discardHighs();
    throw new RuntimeFailure(`HiGHS failed on the ${what}: ${errorMessage(e)}`);
  }
}

function readDirection(sol: Solution, d: number): { w: number[]; b: number } | null {
  const w: number[] = [];
  for (let j = 0; j < d; j++) {
    const c = sol.Columns[`w${j}`];
    // A variable that appears in no constraint (an all-zero feature) is absent: it is 0.
    const v = c && 'Primal' in c ? c.Primal : 0;
    if (typeof v !== 'number' || !Number.isFinite(v)) return null;
    w.push(v);
  }
  const c = sol.Columns.b;
  const b = c && 'Primal' in c ? c.Primal : 0;
  if (typeof b !== 'number' || !Number.isFinite(b)) return null;
  return { w, b };
}

function minSlack(A: FloatArray, B: FloatArray, m: number, n: number, d: number, w: number[], b: number): number {
  let min = Infinity;
  for (let i = 0; i < m; i++) {
    let s = b;
    for (let j = 0; j < d; j++) s += w[j]! * A[i * d + j]!;
    min = Math.min(min, s);
  }
  for (let i = 0; i < n; i++) {
    let s = b;
    for (let j = 0; j < d; j++) s += w[j]! * B[i * d + j]!;
    min = Math.min(min, -s);
  }
  return min;
}

/** Largest |value| of both sets (1 when all are 0). */
function maxAbs(A: FloatArray, B: FloatArray): number {
  let s = 0;
  for (const X of [A, B]) for (let i = 0; i < X.length; i++) s = Math.max(s, Math.abs(X[i]!));
  return s > 0 ? s : 1;
}

function scaled(X: FloatArray, s: number): Float64Array {
  const out = new Float64Array(X.length);
  for (let i = 0; i < X.length; i++) out[i] = X[i]! / s;
  return out;
}

/**
 * Is {A (m×d), B (n×d)} strictly linearly separable? Rows are row-major; m = A.length/d.
 * HiGHS errors become RuntimeFailure carrying the status; limits give separable: null.
 */
export async function lpSeparable(A: FloatArray, B: FloatArray, d: number, opts: LpOptions = {}): Promise<LpResult> {
  if (!Number.isInteger(d) || d < 1) throw new RuntimeFailure(`lpSeparable: d must be a positive integer, got ${d}`);
  if (A.length % d !== 0 || B.length % d !== 0) throw new RuntimeFailure(`lpSeparable: ${A.length} and ${B.length} values are not whole rows of width ${d}`);
  const m = A.length / d;
  const n = B.length / d;
  if (m === 0 || n === 0) throw new RuntimeFailure(`lpSeparable: both sets need at least one point (got ${m} and ${n})`);
  for (const [X, name] of [[A, 'A'], [B, 'B']] as const) {
    for (let i = 0; i < X.length; i++) {
      if (!Number.isFinite(X[i]!)) throw new RuntimeFailure(`lpSeparable: ${name} has a non-finite value at row ${Math.floor(i / d)}`);
    }
  }
  const maxSize = opts.maxSize ?? 2e6;
  if ((m + n) * d > maxSize) return { separable: null, status: `skipped: too large ((m+n)·d = ${(m + n) * d} > ${maxSize})`, m, n, d };
  const timeLimit = opts.timeLimitS ?? 60;
  const highs = await loadHighs();

  const lp = solve(highs, separabilityLpText(A, B, m, n, d, 'zero'), timeLimit, 'separability LP');
  if (INFEASIBLE.has(lp.Status)) return { separable: false, status: lp.Status, m, n, d };
  if (LIMITS.has(lp.Status)) return { separable: null, status: lp.Status, m, n, d };
  if (lp.Status !== 'Optimal') {
    throw new RuntimeFailure(`HiGHS returned status '${lp.Status}' for the separability LP (${m}+${n} points, d=${d})`);
  }
  const dir = readDirection(lp, d);
  if (!dir) throw new RuntimeFailure(`HiGHS reported 'Optimal' for the separability LP but returned no finite solution`);
  const slack = minSlack(A, B, m, n, d, dir.w, dir.b);
  // The answer is checked, not trusted: a solution that does not strictly separate the points in
  // float64 (the solver's feasibility tolerance let it through) proves nothing either way.
  if (!(slack > 0)) return { separable: null, status: `unverified: the LP solution does not strictly separate the points (min slack ${slack.toExponential(2)})`, minSlack: slack, m, n, d };
  const res: LpResult = { separable: true, status: lp.Status, minSlack: slack, w: dir.w, b: dir.b, m, n, d };

  if (opts.margin ?? true) {
    // HiGHS's QP solver stalls on badly scaled points: 40 two-dimensional ReLU features of size
    // ~50–90 ran to the 60 s limit, the same points divided by their largest |value| solved in
    // 2 ms. The QP runs on x/s (s = max |x|): w' = s·w, b' = b, so the margin is s/‖w'‖.
    const scale = maxAbs(A, B);
    let qp: Solution;
    try {
      qp = solve(highs, separabilityLpText(scaled(A, scale), scaled(B, scale), m, n, d, 'margin'), timeLimit, 'hard-margin SVM QP');
    } catch (e) {
      // The margin is an extra: the LP has already decided separability, so report the QP's failure instead of failing the pair.
      res.marginStatus = `solver error: ${errorMessage(e)}`;
      return res;
    }
    res.marginStatus = qp.Status;
    if (qp.Status === 'Optimal') {
      const sv = readDirection(qp, d);
      if (!sv) throw new RuntimeFailure(`HiGHS reported 'Optimal' for the hard-margin SVM QP but returned no finite solution`);
      const w = sv.w.map((v) => v / scale);
      let nw = 0;
      for (const v of w) nw += v * v;
      res.margin = 1 / Math.sqrt(nw);
      res.w = w;
      res.b = sv.b;
      res.minSlack = minSlack(A, B, m, n, d, w, sv.b);
    } else if (INFEASIBLE.has(qp.Status)) {
      // The LP just proved feasibility, so this is a numerical disagreement, not an answer.
      throw new RuntimeFailure(`HiGHS found the separability LP feasible but the margin QP '${qp.Status}' (${m}+${n} points, d=${d})`);
    } else if (!LIMITS.has(qp.Status)) {
      throw new RuntimeFailure(`HiGHS returned status '${qp.Status}' for the hard-margin SVM QP (${m}+${n} points, d=${d})`);
    }
  }
  return res;
}
