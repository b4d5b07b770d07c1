/**
 * Checks a TF.js layers-model topology before TF.js sees it. TF.js resolves a functional model's
 * graph by looping until every node has been built; a node that refers to a layer that does not
 * exist, to a node a layer never gets, or to itself through a cycle is never built, and the loop
 * never ends (a TF.js bug, open upstream). Here every reference is checked against the layer list:
 * each inbound node names an existing layer and a node that layer has, and the node graph has no
 * cycles. Both serialisations are read: tfjs-layers / Keras 2 (`inbound_nodes: [[[name, node,
 * tensor, kwargs], …]]`, optionally wrapped in `model_config`, as old tfjs-layers 0.x wrote it) and
 * Keras 3 (`inbound_nodes: [{args: […keras tensors with keras_history…], kwargs}]`). Nested models
 * (a layer that is itself a Sequential or functional model) are checked the same way.
 */
import { RuntimeFailure } from '../errors.js';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A reference to output `tensor` of node `node` of layer `layer`. */
interface NodeRef {
  layer: string;
  node: number;
  tensor: number;
}

const MODEL_CLASSES = new Set(['Model', 'Functional', 'Sequential']);

class TopologyError extends Error {}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** `[name, node, tensor, (kwargs)]`, as in tfjs-layers / Keras 2 inbound nodes and input/output lists. */
function refFromList(v: unknown, where: string): NodeRef {
  if (!Array.isArray(v) || v.length < 3 || typeof v[0] !== 'string' || !isIndex(v[1]) || !isIndex(v[2])) {
    throw new TopologyError(`${where} is not a [layer, node, tensor] reference`);
  }
  return { layer: v[0], node: v[1], tensor: v[2] };
}

/** Keras 3 node: every `keras_history` found anywhere in its args/kwargs is an input. */
function refsFromKeras3(node: Record<string, unknown>, where: string): NodeRef[] {
  const refs: NodeRef[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 64) throw new TopologyError(`${where} is nested too deeply`);
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    const rec = v as Record<string, unknown>;
    if (rec.keras_history !== undefined) refs.push(refFromList(rec.keras_history, `${where}: keras_history`));
    for (const x of Object.values(rec)) walk(x, depth + 1);
  };
  walk(node.args, 0);
  walk(node.kwargs, 0);
  return refs;
}

/** The input references of each inbound node of one layer. */
function inboundNodes(layer: Record<string, unknown>, name: string): NodeRef[][] {
  const raw = layer.inbound_nodes ?? [];
  if (!Array.isArray(raw)) throw new TopologyError(`layer \`${name}\` has inbound_nodes that are not a list`);
  return raw.map((node, i) => {
    const where = `layer \`${name}\` inbound node ${i}`;
    if (isRecord(node)) return refsFromKeras3(node, where);
    if (!Array.isArray(node)) throw new TopologyError(`${where} is neither a list nor a Keras 3 node`);
    return node.map((r, j) => refFromList(r, `${where} input ${j}`));
  }).map((refs, i) => {
    // TF.js never applies a node without inputs, so the layer never gets it.
    if (refs.length === 0) throw new TopologyError(`layer \`${name}\` inbound node ${i} has no inputs`);
    return refs;
  });
}

function checkFunctional(config: Record<string, unknown>, path: string): void {
  const layers = config.layers;
  if (!Array.isArray(layers)) throw new TopologyError(`${path} has no layer list`);
  /** Node count per layer: one per inbound node, and one for an input layer (built with the layer). */
  const nodes = new Map<string, NodeRef[][]>();
  const classes = new Map<string, string>();
  for (const [i, layer] of layers.entries()) {
    if (!isRecord(layer)) throw new TopologyError(`${path} layer ${i} is not an object`);
    // TF.js files each layer under its top-level `name` and queues its nodes under its config's
    // name: both must be there and agree, or nodes wait under a name nothing ever processes.
    const name = layer.name;
    if (typeof name !== 'string') throw new TopologyError(`${path} layer ${i} has no name`);
    if (nodes.has(name)) throw new TopologyError(`${path} has two layers named \`${name}\``);
    const inner = isRecord(layer.config) ? layer.config.name : undefined;
    if (inner !== undefined && inner !== name) throw new TopologyError(`${path} layer \`${name}\` is called \`${String(inner)}\` in its config`);
    const cls = typeof layer.class_name === 'string' ? layer.class_name : '';
    classes.set(name, cls);
    nodes.set(name, inboundNodes(layer, name));
    checkNested(layer, `${path} layer \`${name}\``);
  }
  const nodeCount = (name: string): number => Math.max(nodes.get(name)!.length, classes.get(name) === 'InputLayer' ? 1 : 0);
  const checkRef = (r: NodeRef, where: string): void => {
    if (!nodes.has(r.layer)) throw new TopologyError(`${where} refers to layer \`${r.layer}\`, which is not in the model`);
    const n = nodeCount(r.layer);
    if (r.node >= n) throw new TopologyError(`${where} refers to node ${r.node} of layer \`${r.layer}\`, which has ${n}`);
  };
  for (const [name, list] of nodes) {
    list.forEach((refs, i) => refs.forEach((r) => checkRef(r, `layer \`${name}\` (inbound node ${i})`)));
  }
  for (const key of ['input_layers', 'output_layers'] as const) {
    const raw = config[key];
    if (raw === undefined) continue;
    if (!Array.isArray(raw)) throw new TopologyError(`${path} ${key} is not a list`);
    // A single reference may be written bare: ["name", 0, 0].
    const list = typeof raw[0] === 'string' ? [raw] : raw;
    list.forEach((r, i) => checkRef(refFromList(r, `${path} ${key}[${i}]`), `${path} ${key}[${i}]`));
  }
  checkAcyclic(nodes, path);
}

/**
 * Depth-first search over nodes (layer, node index); a back edge is a cycle TF.js would loop on.
 * A reference to node j of a layer waits until that layer has been applied j + 1 times, so it
 * depends on the layer's nodes 0..j, not on node j alone.
 */
function checkAcyclic(nodes: ReadonlyMap<string, NodeRef[][]>, path: string): void {
  const state = new Map<string, 1 | 2>(); // 1 on the stack, 2 done
  for (const [name, list] of nodes) {
    for (let i = 0; i < list.length; i++) {
      const root = `${name}\u0000${i}`;
      if (state.has(root)) continue;
      // Iterative, so a long chain of layers cannot overflow the call stack.
      const stack: { key: string; refs: NodeRef[]; next: number }[] = [{ key: root, refs: list[i]!, next: 0 }];
      state.set(root, 1);
      while (stack.length > 0) {
        const top = stack[stack.length - 1]!;
        if (top.next === top.refs.length) {
          state.set(top.key, 2);
          stack.pop();
          continue;
        }
        const r = top.refs[top.next++]!;
        let pushed = false;
        for (let j = 0; j <= r.node && !pushed; j++) {
          const key = `${r.layer}\u0000${j}`;
          const s = state.get(key);
          if (s === 1) throw new TopologyError(`${path} has a cycle through layer \`${r.layer}\``);
          if (s === 2) continue;
          // Visit one dependency now; the reference is revisited (next--) for the rest.
          state.set(key, 1);
          stack.push({ key, refs: nodes.get(r.layer)![j] ?? [], next: 0 });
          top.next--;
          pushed = true;
        }
      }
    }
  }
}

function checkSequential(config: unknown, path: string): void {
  const layers = Array.isArray(config) ? config : isRecord(config) ? config.layers : undefined;
  if (!Array.isArray(layers)) throw new TopologyError(`${path} has no layer list`);
  layers.forEach((layer, i) => {
    if (!isRecord(layer)) throw new TopologyError(`${path} layer ${i} is not an object`);
    checkNested(layer, `${path} layer ${i}`);
  });
}

/** A layer that is itself a model gets the same checks. */
function checkNested(layer: Record<string, unknown>, path: string): void {
  if (typeof layer.class_name === 'string' && MODEL_CLASSES.has(layer.class_name)) checkModel(layer, path);
}

function checkModel(model: Record<string, unknown>, path: string): void {
  if (model.class_name === 'Sequential') checkSequential(model.config, path);
  else if (isRecord(model.config)) checkFunctional(model.config, path);
  else throw new TopologyError(`${path} has no config`);
}

/**
 * Throws a RuntimeFailure naming the first broken reference of a layers-model topology
 * (`modelTopology` of model.json). Topologies that are not layers models are left alone.
 */
export function checkLayersTopology(file: string, topology: unknown): void {
  if (!isRecord(topology)) return;
  const model = isRecord(topology.model_config) ? topology.model_config : topology;
  if (typeof model.class_name !== 'string' || !MODEL_CLASSES.has(model.class_name)) return;
  try {
    checkModel(model, 'the model');
  } catch (e) {
    if (!(e instanceof TopologyError)) throw e;
    throw new RuntimeFailure(`\`${file}\` has a broken layer graph: ${e.message}`, 'the model.json is corrupt or was edited by hand; re-export or re-download it');
  }
}
