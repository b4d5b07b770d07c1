/**
 * Weight clustering and linear decision boundaries (docs/theory.md#theory-clustering; Sarussi, Brutzkus, Globerson,
 * "Towards Understanding Learning in Neural Networks with Linear Teachers", arXiv 2101.02533).
 *
 * Network: N(x) = Σ_j v_j σ(w_jᵀx), W m×d row-major, v ∈ R^m, σ leaky ReLU with slope α ≥ 0
 * (σ(z) = z for z > 0, αz otherwise; α = 0 is ReLU). No biases: N is positively homogeneous.
 *
 * Measurements on given weights:
 * - folded weights w̃_j = |v_j| w_j; groups G+ = {j : v_j > 0}, G− = {j : v_j < 0} (v_j = 0: neither);
 * - cluster coherence C± = ‖Σ_{G±} w̃_j‖ / Σ_{G±} ‖w̃_j‖ ∈ [0, 1] (1 ⇔ the group is collinear);
 * - mean cosine of w̃_j to the group centroid (1/|G|)Σ_G w̃_j, over the group's neurons with w̃_j ≠ 0;
 * - collapsed linear classifier v_lin = Σ_{G+} w̃_j − Σ_{G−} w̃_j and the agreement
 *   P[sign N(x) = sign(v_linᵀx)] on given inputs (sign 0 counts as its own value);
 * - agreement regime: on a training point x_i, every neuron of G+ has the same activation sign
 *   (w_jᵀx_i > 0 or ≤ 0), and so does every neuron of G−; it "holds" when that is so on every point.
 *
 * Why collinear groups give a hyperplane: σ(cz) = cσ(z) for c ≥ 0, so Σ_{G+} v_jσ(w_jᵀx) =
 * Σ_{G+} σ(w̃_jᵀx); with w̃_j = c_j u this is σ(Uᵀx), U = Σ_{G+} w̃_j; likewise σ(Vᵀx) for G−, and
 * N(x) = σ(Uᵀx) − σ(Vᵀx) has the sign of (U − V)ᵀx because σ is strictly increasing when α > 0.
 * With α = 0 the sign can be 0 where v_linᵀx is not, and neurons can die: no such guarantee.
 *
 * Training (`trainClustering`): a seeded linear teacher (x ~ N(0, I_d), y = sign(w*ᵀx), the
 * teacher coordinate pushed out by a margin γ), full-batch gradient descent on the mean logistic
 * loss log(1 + e^{−yN(x)}) from a small initialisation, in plain float64 (the sizes here are
 * small: d ≤ ~50, m ≤ ~100, n ≤ ~2000). Written by hand rather than with TF.js so that every step
 * can be inspected (the activation pattern of every neuron on every training point is checked at
 * every step to find when the agreement regime first holds) and the run is bit-reproducible.
 * Before training, linear separability through the origin is decided with HiGHS (sample-lp.ts).
 */
export * from './net.js';
export * from './data.js';
export * from './train.js';
