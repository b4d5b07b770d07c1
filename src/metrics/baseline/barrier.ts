/**
 * The exact quadratic-layer test as a semidefinite programme, solved by a log-barrier
 * (path-following) interior-point method written for its structure.
 *
 *   maximise t  subject to  S_b = s_b·A_b(a) − t·I ⪰ 0 for every block b,   cᵀa = 1,
 *
 * with A_b(a) = Σ_i a_i g_i g_iᵀ (g_i = row i of G_b) and c_i = Σ_b s_b‖g_i^b‖², i.e. the
 * normalisation Σ_b tr(s_b A_b(a)) = 1, which every separating a satisfies after scaling. So the
 * classes are separable iff the optimum t* > 0, and t* ≤ 1/Σ_b r_b always.
 *
 * Every constraint matrix is rank one, so the Newton system is small: the Hessian of
 * −Σ_b log det S_b in a is Σ_b (G_b S_b⁻¹ G_bᵀ)∘² (D×D, Hadamard square), bordered by the t row;
 * one step costs O(D²·r + D³/3). Iterates stay strictly feasible (S_b ≻ 0), and the search stops
 * as soon as the answer is certain:
 *   - separable: some iterate's a has λ_min(s_b A_b(a)) > 0 for every b, checked in float64 by
 *     a symmetric eigensolver; that a is the certificate;
 *   - inseparable: the barrier's dual point P_b = S_b⁻¹/τ, shifted to P'_b = P̂_b + |y|·I, is a
 *     positive definite P' with q(P') = ρ ≈ 0, q_i(P) = Σ_b s_b g_iᵀP_b g_i. For any a with every
 *     s_bA_b(a) ⪰ 0, Σ_b⟨P'_b, s_bA_b(a)⟩ = aᵀρ, while the left side is at least
 *     λ_min(P')·Σ_b tr(s_bA_b(a)) ≥ λ_min(P')·√λ_min(H₀)·‖a‖ with H₀ = Σ_b (G_bG_bᵀ)∘². So
 *     λ_min(P')·√λ_min(H₀) > ‖ρ‖ proves that no a ≠ 0 separates, without trusting the solver.
 *   - otherwise, once the duality gap is below `tol`/Σ_b r_b, t* lies within that of 0: the
 *     instance sits on the phase boundary; it is called inseparable with proof 'tolerance'.
 */
import { RuntimeFailure } from '../../errors.js';
import { symEigenvalues } from '../../linalg/dense.js';
import { choleskyInPlace, choleskyInverse, choleskySolve, logDetFromCholesky } from '../../linalg/chol.js';
import { blockMatrix, checkBlocks, type ExactResult, type QuadBlock } from './quad-block.js';

export interface BarrierOptions {
  /** Newton steps in all before giving up (status `undecided`). Default 500. */
  maxNewton?: number;
  /** Relative gap (× 1/Σ r_b) below which a still undecided instance counts as on the boundary. Default 1e-9. */
  tol?: number;
  /** Growth of the barrier weight τ per outer round. Default 50 (fewest Newton steps in all, measured over r = 6…20). */
  mu?: number;
}

interface BlockState {
  /** S_b (r×r) and S_b⁻¹. */
  S: Float64Array;
  Sinv: Float64Array;
  logDet: number;
}

/** S = s_b A_b(a) − t I, or null when it is not positive definite. */
function blockState(b: QuadBlock, a: ArrayLike<number>, t: number, D: number): BlockState | null {
  const S = blockMatrix(b, a, D);
  for (let p = 0; p < b.r; p++) S[p * b.r + p]! -= t;
  const L = new Float64Array(S);
  if (!choleskyInPlace(L, b.r)) return null;
  return { S, Sinv: choleskyInverse(L, b.r), logDet: logDetFromCholesky(L, b.r) };
}

function logDetShifted(S: Float64Array, dS: Float64Array, alpha: number, r: number): number | null {
  const L = new Float64Array(r * r);
  for (let i = 0; i < L.length; i++) L[i] = S[i]! + alpha * dS[i]!;
  return choleskyInPlace(L, r) ? logDetFromCholesky(L, r) : null;
}

/** q_i(P) = Σ_b s_b g_iᵀ P_b g_i. */
function qOf(blocks: readonly QuadBlock[], P: readonly Float64Array[], D: number): Float64Array {
  const q = new Float64Array(D);
  blocks.forEach((b, k) => {
    const Pb = P[k]!;
    const { G, r, sign } = b;
    for (let i = 0; i < D; i++) {
      const o = i * r;
      let s = 0;
      for (let p = 0; p < r; p++) {
        let u = 0;
        for (let j = 0; j < r; j++) u += Pb[p * r + j]! * G[o + j]!;
        s += G[o + p]! * u;
      }
      q[i]! += sign * s;
    }
  });
  return q;
}

/** Smallest eigenvalue of H₀ = Σ_b (G_bG_bᵀ)∘² (D×D): how injective a ↦ (A_b(a))_b is. */
function h0MinEigenvalue(blocks: readonly QuadBlock[], D: number): number {
  const H = new Float64Array(D * D);
  for (const { G, r } of blocks) {
    for (let i = 0; i < D; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let p = 0; p < r; p++) s += G[i * r + p]! * G[j * r + p]!;
        H[i * D + j]! += s * s;
      }
    }
  }
  const ev = symEigenvalues(H, D);
  return ev[D - 1]!;
}

/** Tries to prove inseparability from the barrier's dual point (see the module note). */
function proveInseparable(blocks: readonly QuadBlock[], states: readonly BlockState[], D: number, h0Min: () => number): { proven: boolean; y: number } {
  let trace = 0;
  for (const [k, b] of blocks.entries()) for (let p = 0; p < b.r; p++) trace += states[k]!.Sinv[p * b.r + p]!;
  const P = states.map((s) => s.Sinv.map((v) => v / trace));
  const q = qOf(blocks, P, D);
  let cq = 0;
  let cc = 0;
  const c = qOf(
    blocks,
    blocks.map((b) => {
      const I = new Float64Array(b.r * b.r);
      for (let p = 0; p < b.r; p++) I[p * b.r + p] = 1;
      return I;
    }),
    D,
  );
  for (let i = 0; i < D; i++) {
    cq += c[i]! * q[i]!;
    cc += c[i]! * c[i]!;
  }
  const y = cq / cc;
  if (!(y < 0)) return { proven: false, y };
  // P' = P − y·I; q(P') = q(P) − y·c = ρ.
  let rho2 = 0;
  let qAbs = 0;
  for (let i = 0; i < D; i++) {
    const rho = q[i]! - y * c[i]!;
    rho2 += rho * rho;
    qAbs += Math.abs(q[i]!) + Math.abs(y * c[i]!);
  }
  let lamMin = Infinity;
  blocks.forEach((b, k) => {
    const ev = symEigenvalues(P[k]!, b.r);
    lamMin = Math.min(lamMin, ev[b.r - 1]! - y);
  });
  const h = h0Min();
  if (!(h > 0)) return { proven: false, y };
  // A generous allowance for the rounding in q (each entry a sum of O(r²) products).
  const rounding = 1e-13 * qAbs;
  return { proven: lamMin * Math.sqrt(h) > Math.sqrt(rho2) + rounding, y };
}

/**
 * Hessian (lower triangle and t column) and gradient of f = −τt − Σ_b log det S_b in (a, t):
 *   H_aa = Σ_b (G_b S_b⁻¹ G_bᵀ)∘²,  H_at = −Σ_b s_b‖S_b⁻¹g_i‖²,  H_tt = Σ_b ‖S_b⁻¹‖_F²,
 *   ∂_a f = −Σ_b s_b diag(G_b S_b⁻¹ G_bᵀ),  ∂_t f = −τ + Σ_b tr S_b⁻¹.
 * Plain loops in a function of their own: V8 optimises them well there (3× slower inlined in the
 * solver), and measured faster than handing the D×D product to onnxruntime, whose per-call and
 * threading costs outweigh an O(D²r) product at these sizes.
 */
function assembleNewton(blocks: readonly QuadBlock[], st: readonly BlockState[], D: number, tau: number, H: Float64Array, g: Float64Array): void {
  const n = D + 1;
  H.fill(0);
  g.fill(0);
  g[D] = -tau;
  const Brow = new Float64Array(D);
  for (const [k, b] of blocks.entries()) {
    const { G, r, sign } = b;
    const Si = st[k]!.Sinv;
    // X = G S⁻¹ (D×r); row i of B = X Gᵀ is accumulated over p along contiguous Gᵀ rows.
    const X = new Float64Array(D * r);
    for (let i = 0; i < D; i++) {
      for (let p = 0; p < r; p++) {
        let s = 0;
        for (let q = 0; q < r; q++) s += G[i * r + q]! * Si[q * r + p]!;
        X[i * r + p] = s;
      }
    }
    const GT = new Float64Array(r * D);
    for (let i = 0; i < D; i++) for (let p = 0; p < r; p++) GT[p * D + i] = G[i * r + p]!;
    for (let i = 0; i < D; i++) {
      const xi = i * r;
      let nrm = 0;
      for (let p = 0; p < r; p++) nrm += X[xi + p]! * X[xi + p]!;
      H[i * n + D]! -= sign * nrm;
      Brow.fill(0, 0, i + 1);
      for (let p = 0; p < r; p++) {
        const x = X[xi + p]!;
        const gp = p * D;
        for (let j = 0; j <= i; j++) Brow[j]! += x * GT[gp + j]!;
      }
      const hi = i * n;
      for (let j = 0; j <= i; j++) H[hi + j]! += Brow[j]! * Brow[j]!;
      g[i]! -= sign * Brow[i]!;
    }
    let tr = 0;
    let fro = 0;
    for (let p = 0; p < r; p++) tr += Si[p * r + p]!;
    for (let p = 0; p < r * r; p++) fro += Si[p]! * Si[p]!;
    g[D]! += tr;
    H[D * n + D]! += fro;
  }
}

export function barrierSeparable(blocks: readonly QuadBlock[], D: number, opts: BarrierOptions = {}): ExactResult {
  checkBlocks(blocks, D);
  const maxNewton = opts.maxNewton ?? 500;
  const mu = opts.mu ?? 50;
  const n = D + 1;
  let R = 0;
  for (const b of blocks) R += b.r;
  const tol = (opts.tol ?? 1e-9) / R;

  const c = new Float64Array(D);
  let bigness = 0;
  for (const { G, r, sign } of blocks) {
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (let p = 0; p < r; p++) s += G[i * r + p]! * G[i * r + p]!;
      c[i]! += sign * s;
      bigness += s;
    }
  }
  let cc = 0;
  for (let i = 0; i < D; i++) cc += c[i]! * c[i]!;

  let h0: number | null = null;
  const h0Min = () => (h0 ??= h0MinEigenvalue(blocks, D));

  // c = q(I): Σ_b tr(s_bA_b(a)) = cᵀa. When c vanishes (e.g. the same subspace on both sides),
  // P = I is itself the dual certificate: no a makes every block positive definite.
  if (cc <= (1e-12 * bigness) ** 2) {
    const proven = Math.sqrt(h0Min()) > Math.sqrt(cc) + 1e-13 * bigness;
    return { separable: false, status: 'inseparable', proof: proven ? 'dual certificate' : 'tolerance', margin: -Infinity, bounds: [-Infinity, 0], iterations: 0 };
  }

  // Start: a ∝ c on the normalisation plane, t one unit of 1/R below the smallest eigenvalue.
  const a = Float64Array.from(c, (v) => v / cc);
  const minEig = (x: ArrayLike<number>) => {
    let low = Infinity;
    for (const b of blocks) low = Math.min(low, symEigenvalues(blockMatrix(b, x, D), b.r)[b.r - 1]!);
    return low;
  };
  // Eigenvalues of s_bA_b(a) are accurate to ~ε·Σ|a_i|‖g_i‖²; a certificate must clear that.
  const sepFloor = (x: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < D; i++) s += Math.abs(x[i]!);
    return 1e-12 * s * (bigness / D);
  };
  const anorm = (x: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < D; i++) s += x[i]! * x[i]!;
    return Math.sqrt(s);
  };

  let low = minEig(a);
  let best = low;
  let bestA = Float64Array.from(a);
  if (low > sepFloor(a)) {
    return { separable: true, status: 'separable', proof: 'certificate', certificate: bestA, margin: low / anorm(a), bounds: [low, 1 / R], iterations: 0 };
  }
  let t = low - 1 / R;
  let tau = R / (1 / R - t);

  let states = blocks.map((b) => blockState(b, a, t, D));
  if (states.some((s) => s === null)) throw new RuntimeFailure('exact quadratic test: the starting point is not interior (rounding?)');

  const H = new Float64Array(n * n);
  const g = new Float64Array(n);
  let newton = 0;
  let upper = 1 / R;
  for (let outer = 0; newton < maxNewton; outer++) {
    // Centre for this τ.
    for (;;) {
      const st = states as BlockState[];
      assembleNewton(blocks, st, D, tau, H, g);
      for (let i = 0; i < D; i++) H[D * n + i] = H[i * n + D]!;
      let maxDiag = 0;
      for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, H[i * n + i]!);
      // Directions in the kernel of a ↦ (A_b(a))_b (only when D exceeds its image) change nothing; the ridge pins them.
      for (let i = 0; i < n; i++) H[i * n + i]! += 1e-13 * maxDiag;
      if (!choleskyInPlace(H, n)) throw new RuntimeFailure(`exact quadratic test: singular Newton system (D=${D})`);
      const u = choleskySolve(H, n, Float64Array.from(g));
      const e = new Float64Array(n);
      e.set(c);
      const v = choleskySolve(H, n, Float64Array.from(e));
      let ca = 0;
      for (let i = 0; i < D; i++) ca += c[i]! * a[i]!;
      let eu = 0;
      let ev = 0;
      for (let i = 0; i < D; i++) {
        eu += c[i]! * u[i]!;
        ev += c[i]! * v[i]!;
      }
      const w = -((1 - ca) + eu) / ev;
      const dx = new Float64Array(n);
      let gd = 0;
      for (let i = 0; i < n; i++) {
        dx[i] = -u[i]! - w * v[i]!;
        gd += g[i]! * dx[i]!;
      }
      const dec2 = -gd;
      // Line search on f = −τt − Σ log det S_b along dx, staying inside the cone.
      const f0 = -tau * t - st.reduce((s, x) => s + x.logDet, 0);
      const dS = blocks.map((b) => {
        const M = blockMatrix(b, dx, D);
        for (let p = 0; p < b.r; p++) M[p * b.r + p]! -= dx[D]!;
        return M;
      });
      let alpha = 1;
      for (let ls = 0; ls < 60; ls++, alpha *= 0.5) {
        let f = -tau * (t + alpha * dx[D]!);
        let ok = true;
        for (const [k, b] of blocks.entries()) {
          const ld = logDetShifted(st[k]!.S, dS[k]!, alpha, b.r);
          if (ld === null) {
            ok = false;
            break;
          }
          f -= ld;
        }
        if (ok && f <= f0 + 0.01 * alpha * gd) break;
      }
      for (let i = 0; i < D; i++) a[i]! += alpha * dx[i]!;
      t += alpha * dx[D]!;
      newton++;
      const next = blocks.map((b) => blockState(b, a, t, D));
      if (next.some((s) => s === null)) throw new RuntimeFailure('exact quadratic test: a Newton step left the cone (rounding?)');
      states = next;

      low = minEig(a);
      if (low / anorm(a) > best / anorm(bestA)) {
        best = low;
        bestA = Float64Array.from(a);
      }
      if (low > sepFloor(a)) {
        return { separable: true, status: 'separable', proof: 'certificate', certificate: Float64Array.from(a), margin: low / anorm(a), bounds: [low, upper], iterations: newton };
      }
      // Loose centring is enough to move on (the proofs are checked on their own); near the end, tight.
      if (dec2 / 2 < (R / tau < 100 * tol ? 1e-10 : 1e-3) || newton >= maxNewton) break;
    }
    // On the central path t* ≤ t + ν/τ (ν = Σ r_b); off it, an estimate: it only triggers the proof.
    upper = Math.min(upper, t + R / tau);
    if (upper < 0) {
      const { proven } = proveInseparable(blocks, states as BlockState[], D, h0Min);
      if (proven) return { separable: false, status: 'inseparable', proof: 'dual certificate', margin: best / anorm(bestA), bounds: [low, upper], iterations: newton };
    }
    if (R / tau < tol) {
      return { separable: false, status: 'inseparable', proof: 'tolerance', margin: best / anorm(bestA), bounds: [low, upper], iterations: newton };
    }
    tau *= mu;
  }
  return { separable: null, status: 'undecided', margin: best / anorm(bestA), bounds: [low, upper], iterations: newton };
}
