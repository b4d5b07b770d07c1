/**
 * Layer selection from the command line or a probe spec, over any runner's LayerInfo[]:
 * `default`, `all`, exact ids, globs (`blocks/*`, `/conv?/*`), `op:Relu|MaxPool`, `kind:conv`,
 * comma-separated and combinable. Results keep model order and contain no duplicates.
 */
import { RuntimeFailure, UsageError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import type { LayerInfo } from './types.js';

const KINDS: readonly LayerInfo['kind'][] = ['dense', 'conv', 'tokens', 'other'];
/** Ops of pseudo-layers that stand for the model input itself. */
const INPUT_OPS = new Set(['Input', 'InputLayer']);

export function isInputLayer(l: LayerInfo): boolean {
  return INPUT_OPS.has(l.op);
}

function globToRegExp(glob: string): RegExp {
  // `*` crosses `/` on purpose: `/conv*` should reach `/conv1/Conv_output_0`.
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** The error for an unknown layer id, shared by selection and the runners. */
export function layerNotFound(what: string, candidates: readonly string[], modelLabel: string): UsageError {
  const near = didYouMean(what, candidates);
  return new UsageError(`layer \`${what}\` not found in model${near ? '; ' + near : ''}`, `run \`layerprobe layers ${modelLabel}\` to list layers`);
}

function matchItem(item: string, layers: readonly LayerInfo[], modelLabel: string): LayerInfo[] {
  const exact = layers.find((l) => l.id === item);
  if (exact) return [exact];
  if (item === 'default') return layers.filter((l) => l.defaultSelected);
  if (item === 'all') return layers.filter((l) => !isInputLayer(l));
  const lower = item.toLowerCase();
  if (lower.startsWith('op:')) {
    const ops = item.slice(3).split('|').map((s) => s.trim().toLowerCase()).filter(Boolean);
    const hit = layers.filter((l) => ops.includes(l.op.toLowerCase()));
    if (hit.length === 0) {
      const present = [...new Set(layers.map((l) => l.op))];
      const near = didYouMean(item.slice(3), present);
      throw new UsageError(`no layer with op \`${item.slice(3)}\` in model${near ? '; ' + near : ''}`, `ops present: ${present.join(', ')}`);
    }
    return hit;
  }
  if (lower.startsWith('kind:')) {
    const kind = lower.slice(5).trim();
    if (!(KINDS as readonly string[]).includes(kind)) {
      throw new UsageError(`unknown layer kind \`${item.slice(5)}\`; use one of ${KINDS.join(', ')}`);
    }
    const hit = layers.filter((l) => l.kind === kind);
    if (hit.length === 0) throw new UsageError(`no layer of kind \`${kind}\` in model`, `run \`layerprobe layers ${modelLabel}\` to list layers`);
    return hit;
  }
  if (item.includes('*') || item.includes('?')) {
    const re = globToRegExp(item);
    const hit = layers.filter((l) => re.test(l.id));
    if (hit.length > 0) return hit;
  }
  throw layerNotFound(item, layers.map((l) => l.id), modelLabel);
}

/**
 * Resolve a selection spec. `spec` undefined or 'default' gives the default layers; an item
 * that matches nothing is a UsageError naming the closest ids. `modelLabel` only fills the
 * hint (`run \`layerprobe layers <model>\``).
 */
export function selectLayers(layers: readonly LayerInfo[], spec?: string | readonly string[], modelLabel = '<model>'): LayerInfo[] {
  const items = (spec === undefined ? ['default'] : typeof spec === 'string' ? [spec] : [...spec])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) items.push('default');
  const chosen = new Set<LayerInfo>();
  for (const item of items) for (const l of matchItem(item, layers, modelLabel)) chosen.add(l);
  return layers.filter((l) => chosen.has(l));
}

/** The model's output layer (the first one, when there are several). */
export function outputLayer(layers: readonly LayerInfo[]): LayerInfo {
  const out = layers.find((l) => l.isOutput);
  if (!out) throw new RuntimeFailure('model exposes no output layer');
  return out;
}
