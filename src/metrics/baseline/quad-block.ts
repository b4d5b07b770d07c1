/**
 * Shared pieces of the exact quadratic-layer test (docs/theory.md#theory-phase): with φ(x) = (Wx)² and
 * x = U_k c, the readout is aᵀφ(U_k c) = cᵀA_k(a)c, A_k(a) = Σ_i a_i g_i g_iᵀ = G_kᵀdiag(a)G_k,
 * g_i = U_kᵀw_i (row i of G_k = W U_k, D×r). Class k is on the positive side iff A_k(a) ≻ 0.
 */
import { RuntimeFailure } from '../../errors.js';

export interface QuadBlock {
  /**
   * Rows g_i = U_kᵀw_i of G_k = W U_k, row-major with r columns. It may have more than D rows:
   * the tests read the first D, so one G for the widest layer serves every narrower prefix.
   */
  G: Float64Array;
  r: number;
  /** +1: the readout must be positive on this class (A_k(a) ≻ 0); −1: negative (A_k(a) ≺ 0). */
  sign: 1 | -1;
}

export type ExactStatus = 'separable' | 'inseparable' | 'undecided';

/**
 * How a verdict was reached: a readout a checked by eigenvalues ('certificate'); a dual
 * certificate checked in float64 ('dual certificate'); the cutting-plane LP's dual bound
 * ('lp bound'); the optimum pinned within the tolerance of 0, i.e. on the phase boundary
 * ('tolerance'); or two class subspaces sharing a direction ('subspaces intersect').
 */
export type ExactProof = 'certificate' | 'dual certificate' | 'lp bound' | 'tolerance' | 'subspaces intersect';

export interface ExactResult {
  /** null when the iteration limit came first. */
  separable: boolean | null;
  status: ExactStatus;
  proof?: ExactProof;
  /** A readout a (length D) with sign_k·A_k(a) ≻ 0 for every block, when separable. */
  certificate?: Float64Array;
  /**
   * min_k λ_min(sign_k A_k(a)) / ‖a‖₂ for the best a seen: > 0 (and certified) when separable,
   * ≤ 0 otherwise, where it is a lower bound on the best normalised margin.
   */
  margin: number;
  /**
   * [lower, upper] on the optimum of the solver's own normalisation (barrier: Σ_b tr(s_bA_b(a)) = 1,
   * upper = the central-path estimate t + Σr/τ; cutting planes: ‖a‖∞ ≤ 1, upper = the LP dual bound).
   */
  bounds: [number, number];
  /** Newton steps (barrier) or LP rounds (cutting planes). */
  iterations: number;
}

export function checkBlocks(blocks: readonly QuadBlock[], D: number): void {
  if (!Number.isInteger(D) || D < 1) throw new RuntimeFailure(`exact quadratic test: width D must be a positive integer, got ${D}`);
  if (blocks.length < 2) throw new RuntimeFailure('exact quadratic test: needs at least two classes');
  if (!blocks.some((b) => b.sign > 0) || !blocks.some((b) => b.sign < 0)) {
    throw new RuntimeFailure('exact quadratic test: needs a class on each side');
  }
  for (const b of blocks) {
    if (!Number.isInteger(b.r) || b.r < 1) throw new RuntimeFailure(`exact quadratic test: subspace dimension must be ≥ 1, got ${b.r}`);
    if (b.G.length < D * b.r) throw new RuntimeFailure(`exact quadratic test: G has ${b.G.length / b.r} rows, width ${D} needs ${D}`);
    for (let i = 0; i < D * b.r; i++) {
      if (!Number.isFinite(b.G[i]!)) throw new RuntimeFailure('exact quadratic test: the projected weights contain a non-finite value');
    }
  }
}

/** sign·Σ_{i<D} a_i g_i g_iᵀ (r×r, symmetric). */
export function blockMatrix(block: QuadBlock, a: ArrayLike<number>, D: number): Float64Array {
  const { G, r, sign } = block;
  const M = new Float64Array(r * r);
  for (let i = 0; i < D; i++) {
    const ai = sign * a[i]!;
    if (ai === 0) continue;
    const o = i * r;
    for (let p = 0; p < r; p++) {
      const gp = ai * G[o + p]!;
      for (let q = 0; q <= p; q++) M[p * r + q]! += gp * G[o + q]!;
    }
  }
  for (let p = 0; p < r; p++) for (let q = 0; q < p; q++) M[q * r + p] = M[p * r + q]!;
  return M;
}
