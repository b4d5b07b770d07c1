/**
 * The default layers of any model graph (ONNX tensors, TF.js layers or graph nodes), and a depth
 * axis that follows the graph. The rule, in order:
 *
 * 1. Only the feature path counts: nodes reachable from the model input that reach the model
 *    output (shape plumbing, dead ends and constants drop out).
 * 2. A *sequential* model (no Add/Concat joins two feature paths; written-out GELU or x·σ(x)
 *    gates do not count) keeps the per-format rule: each hidden layer after its nonlinearity,
 *    one per conv block (`sequential` below).
 * 3. A *branchy* model (residual adds, concatenations) gets its block outputs: the cut tensors
 *    (every input→output path passes through them) that end a parallel region (a merge:
 *    residual add, concatenation) or start one that ends in a merge (a fork: the tensor the next
 *    block's branches and skip connection both read). A cut followed by element-wise ops that
 *    are cuts too (Add → ReLU; Add → LayerNorm where the stream forks after the norm, as in
 *    post-LN transformers) counts once, as the last of them. In a transformer block the
 *    attention half ends in a residual add followed by the MLP half's own parallel region; that
 *    mid-block add is not a block output, nor is the token embedding that forks into the first
 *    block. After the last parallel region (the head stack) the pools and flat hidden layers of
 *    the sequential rule stay.
 * 4. Always the head's input (the features the final linear layer reads); a selected tensor that
 *    reaches it through reshapes only (pool → Flatten) gives way to it, so NC3 can use it.
 *
 * Depth is the longest path from the input counted in weighted layers (conv, dense, matmul with
 * learned weights), so parallel branches of one module share a depth.
 */

export interface DagNode {
  id: string;
  /** Feature inputs: ids of other nodes, or the model input's id. */
  inputs: readonly string[];
  /** Carries learned weights (conv, dense, MatMul with a constant): one step of depth. */
  weighted: boolean;
  /** Product of two features (Q·Kᵀ, attention·V). */
  attention: boolean;
  /** An op that joins parallel paths when it reads two features: Add, Sum, Concat (residual adds, modules). */
  merge: boolean;
  /** Only rearranges values (Flatten, Reshape, Transpose, Dropout, Identity). */
  reshape: boolean;
  /** Keeps the shape and reads one feature (activation, batch norm, bias or scale by a constant). */
  elementwise: boolean;
  /** A per-sample normalisation (LayerNorm and kin): joins a cut run only where the stream forks after it (post-LN blocks). */
  norm: boolean;
  /** Whether it is a layer the runner can return (per-sample, batch first); others only carry paths. */
  layer: boolean;
  /** A declared block output (a custom TransformerBlock layer, or an exporter's declared list): always selected. */
  block?: boolean;
  /** One node holding a whole residual block (a TF.js TransformerBlock layer): its output counts as a merge. */
  residualUnit?: boolean;
}

export interface DefaultLayerOptions {
  /** Id the model input has in `inputs`. */
  input: string;
  /** The model output (the classifier's scores). */
  output: string;
  /** The head's input, when the head was found. */
  headInput: string | null;
  /** The per-format rule for sequential models (post-nonlinearity layers, pools). */
  sequential: ReadonlySet<string>;
  /** Members of `sequential` that are pools or flat (rank ≤ 2) layers: kept in a branchy model's head stack. */
  headStack: ReadonlySet<string>;
}

export interface DefaultLayers {
  selected: Set<string>;
  /** Which branch of the rule applied. */
  rule: 'sequential' | 'blocks';
}

/** Node ids on the feature path: reachable from the input and reaching the output. */
function livePath(nodes: readonly DagNode[], input: string, output: string): Set<string> {
  const reach = new Set<string>([input]);
  for (const n of nodes) if (n.inputs.some((i) => reach.has(i))) reach.add(n.id);
  const back = new Set<string>([output]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (back.has(n.id)) for (const i of n.inputs) back.add(i);
  }
  const live = new Set<string>();
  for (const n of nodes) if (reach.has(n.id) && back.has(n.id)) live.add(n.id);
  return live;
}

/**
 * Longest-path depth of every node reachable from the input, in weighted layers. `nodes` must be in
 * topological order (ONNX and TF.js files list them so; the graph runner sorts them).
 */
export function graphDepths(nodes: readonly DagNode[], input: string): Map<string, number> {
  const depth = new Map<string, number>([[input, 0]]);
  for (const n of nodes) {
    let d = -1;
    for (const i of n.inputs) {
      const di = depth.get(i);
      if (di !== undefined && di > d) d = di;
    }
    if (d < 0) continue;
    depth.set(n.id, d + (n.weighted ? 1 : 0));
  }
  depth.delete(input);
  return depth;
}

/**
 * Cut tensors among the live nodes: with nodes in topological order, t is a cut exactly when no
 * tensor produced before t is read after t (every node is then an ancestor or a descendant of t).
 */
function cutsOf(live: readonly DagNode[], input: string): Set<string> {
  const pos = new Map<string, number>([[input, -1]]);
  live.forEach((n, k) => pos.set(n.id, k));
  const lastUse = new Map<string, number>();
  live.forEach((n, k) => {
    for (const i of n.inputs) if (pos.has(i)) lastUse.set(i, Math.max(lastUse.get(i) ?? -1, k));
  });
  const cuts = new Set<string>();
  let reachBeyond = lastUse.get(input) ?? -1;
  live.forEach((n, k) => {
    if (reachBeyond <= k) cuts.add(n.id);
    reachBeyond = Math.max(reachBeyond, lastUse.get(n.id) ?? -1);
  });
  return cuts;
}

export function chooseDefaultLayers(nodes: readonly DagNode[], opts: DefaultLayerOptions): DefaultLayers {
  const liveIds = livePath(nodes, opts.input, opts.output);
  const live = nodes.filter((n) => liveIds.has(n.id));
  const liveInputs = (n: DagNode): string[] => [...new Set(n.inputs.filter((i) => liveIds.has(i) || i === opts.input))];
  const consumers = new Map<string, DagNode[]>();
  for (const n of live) for (const i of liveInputs(n)) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const isMerge = (n: DagNode): boolean => (n.merge && liveInputs(n).length >= 2) || n.residualUnit === true;
  const branchy = live.some(isMerge);

  const selected = new Set<string>();
  if (!branchy) {
    for (const id of opts.sequential) selected.add(id);
  } else {
    const cuts = cutsOf(live, opts.input);
    const byId = new Map(live.map((n) => [n.id, n]));
    const order = new Map(live.map((n, k) => [n.id, k]));
    // Group runs of cuts joined by weight-free one-input ops (Add → ReLU): one representative each.
    interface Group { members: DagNode[]; merge: boolean; fork: boolean; block: boolean }
    const groups: Group[] = [];
    let prevCut: string | null = null;
    for (const n of live) {
      if (!cuts.has(n.id)) continue;
      const ins = liveInputs(n);
      const fork = (consumers.get(n.id)?.length ?? 0) >= 2;
      const joins = prevCut !== null && (n.elementwise || (n.norm && fork)) && ins.length === 1 && ins[0] === prevCut && groups.length > 0;
      if (!joins) groups.push({ members: [], merge: false, fork: false, block: false });
      const g = groups[groups.length - 1]!;
      g.members.push(n);
      g.merge ||= isMerge(n);
      g.fork ||= fork;
      g.block ||= n.block === true;
      prevCut = n.id;
    }
    // A fork starts a block only when the parallel region after it ends in a merge (a skip
    // connection or module), not in a gate such as x·σ(x) or a written-out GELU.
    groups.forEach((g, k) => {
      g.fork &&= groups[k + 1]?.merge === true;
    });
    // Attention inside the region that ends at each group (from the previous group's last member).
    const attentionBefore = new Map<Group, boolean>();
    let start = 0;
    for (const g of groups) {
      const end = order.get(g.members[0]!.id)!;
      let att = false;
      for (let k = start; k <= end; k++) if (live[k]!.attention) att = true;
      attentionBefore.set(g, att);
      start = order.get(g.members[g.members.length - 1]!.id)! + 1;
    }
    const candidates = groups.filter((g) => g.merge || g.fork || g.block);
    candidates.forEach((g, k) => {
      const next = candidates[k + 1];
      const midBlock = attentionBefore.get(g)! && next !== undefined && next.merge && !attentionBefore.get(next)! && !g.block;
      // A fork into the first attention block is the token embedding, not a block output.
      const embedding = !g.merge && !g.block && next !== undefined && attentionBefore.get(next)! && !candidates.slice(0, k).some((c) => c.merge);
      const rep = [...g.members].reverse().find((m) => m.layer);
      if (!midBlock && !embedding && rep) selected.add(rep.id);
    });
    // Declared blocks inside a group stay even when the group's representative is later.
    for (const g of groups) for (const m of g.members) if (m.block) selected.add(m.id);
    let lastMerge = -1;
    live.forEach((n, k) => {
      if (isMerge(n)) lastMerge = k;
    });
    for (const id of opts.headStack) {
      const k = order.get(id);
      if (k !== undefined && k > lastMerge && byId.has(id)) selected.add(id);
    }
  }

  const head = opts.headInput;
  if (head !== null && head !== opts.output && nodes.some((n) => n.id === head)) {
    // A selected tensor that only reshapes into the head input is the same features: keep the flat one.
    const all = new Map(nodes.map((n) => [n.id, n]));
    const readers = new Map<string, DagNode[]>();
    for (const n of nodes) for (const i of new Set(n.inputs)) readers.set(i, [...(readers.get(i) ?? []), n]);
    for (const id of [...selected]) {
      let t = id;
      for (let guard = 0; guard < nodes.length; guard++) {
        const r = readers.get(t);
        if (!r || r.length !== 1 || !r[0]!.reshape) break;
        t = r[0]!.id;
        if (t === head) {
          selected.delete(id);
          break;
        }
      }
    }
    if (all.has(head)) selected.add(head);
  }
  selected.delete(opts.output);
  selected.delete(opts.input);
  return { selected, rule: branchy ? 'blocks' : 'sequential' };
}
