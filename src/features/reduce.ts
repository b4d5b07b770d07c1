/**
 * Reductions turn one layer tensor [n, ...] into one vector per sample [n, d]. The reduction is
 * part of every number's provenance, so each reducer carries a `describe` string that reports
 * print next to the metric, and a model's reductions are chosen together (planReductions) so
 * that a depth curve never mixes pooled and flattened conv maps.
 *
 * The `auto` rule, one choice per model and layer kind:
 * - conv maps: flatten when every selected conv map has at most `cap` values, else gap (mean
 *   over positions per channel) on all of them;
 * - token sequences [T, D]: mean over tokens (mean-token) on all of them;
 * - vectors: kept whole (flatten);
 * - a layer still wider than `cap` after that (a gap of 4096 channels, a 4096-wide vector, an
 *   odd shape) is projected to min(cap, 1024) dims, and its reducer says so in `note`.
 * A named pooling (gap, cls, mean-token) keeps vectors whole too, with a note, as long as some
 * selected layer is of the kind it pools.
 */
import type { LayerInfo, LayerTensor } from '../runtime/types.js';
import { UsageError } from '../errors.js';
import { Rng } from '../util/rng.js';
import { matmul } from '../linalg/ort-ops.js';

export type ReductionName = 'flatten' | 'gap' | 'cls' | 'mean-token' | 'project' | 'auto';

export interface ReductionSpec {
  name: ReductionName;
  /** Target dimension for `project`; the width cap for `auto`. */
  k?: number;
}

export interface Reducer {
  /** e.g. 'gap (mean over 12×12 positions of 20 channels)'. */
  readonly describe: string;
  readonly name: Exclude<ReductionName, 'auto'>;
  /** Output width per sample. */
  readonly dim: number;
  /** Set where this layer departs from its model's reduction rule: what was done instead, and why. */
  readonly note?: string;
  apply(t: LayerTensor): Promise<Float32Array>;
}

/** Default width above which `auto` pools or projects instead of flattening: the widest layer whose d×d within-class scatter the statistics keep (exact NC1). */
export const AUTO_MAX_DIM = 2048;

export function parseReduction(text: string): ReductionSpec {
  const [head, arg] = text.split(':', 2) as [string, string | undefined];
  const names: ReductionName[] = ['flatten', 'gap', 'cls', 'mean-token', 'project', 'auto'];
  if (!names.includes(head as ReductionName)) {
    throw new UsageError(`unknown reduction \`${text}\``, `use one of flatten, gap, cls, mean-token, project:K, auto`);
  }
  const name = head as ReductionName;
  if (name === 'project') {
    const k = Number(arg);
    if (!Number.isInteger(k) || k < 1) throw new UsageError(`reduction \`${text}\` needs a positive dimension, e.g. project:256`);
    return { name, k };
  }
  if (arg !== undefined && name === 'auto') {
    const k = Number(arg);
    if (!Number.isInteger(k) || k < 1) throw new UsageError(`reduction \`${text}\` needs a positive width cap, e.g. auto:4096`);
    return { name, k };
  }
  if (arg !== undefined) throw new UsageError(`reduction \`${head}\` takes no argument (got \`${text}\`)`);
  return { name };
}

function perSample(shape: readonly (number | null)[]): number[] {
  return shape.slice(1).map((v) => {
    if (v === null || v < 0) throw new UsageError('layer shape has an unknown dimension; run a dry batch first');
    return v;
  });
}

const product = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** A stable 32-bit hash of the layer id, so each layer's random projection differs but is reproducible. */
function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

class Flatten implements Reducer {
  readonly name = 'flatten' as const;
  readonly describe: string;
  constructor(readonly dim: number) {
    this.describe = `flatten (${dim} values)`;
  }
  async apply(t: LayerTensor): Promise<Float32Array> {
    return t.data;
  }
}

/** Mean over spatial positions (conv) or tokens (transformers): one average per channel. */
class MeanOver implements Reducer {
  readonly dim: number;
  readonly describe: string;
  constructor(
    readonly name: 'gap' | 'mean-token',
    private readonly layout: 'channels-first' | 'channels-last',
    private readonly channels: number,
    private readonly positions: number,
  ) {
    this.dim = channels;
    this.describe =
      name === 'gap'
        ? `gap (mean over ${positions} positions of ${channels} channels)`
        : `mean-token (mean over ${positions} tokens of width ${channels})`;
  }
  async apply(t: LayerTensor): Promise<Float32Array> {
    const n = t.shape[0]!;
    const c = this.channels;
    const p = this.positions;
    const out = new Float32Array(n * c);
    const x = t.data;
    for (let s = 0; s < n; s++) {
      const base = s * c * p;
      if (this.layout === 'channels-first') {
        for (let ch = 0; ch < c; ch++) {
          let acc = 0;
          const o = base + ch * p;
          for (let i = 0; i < p; i++) acc += x[o + i]!;
          out[s * c + ch] = acc / p;
        }
      } else {
        const row = new Float64Array(c);
        for (let i = 0; i < p; i++) {
          const o = base + i * c;
          for (let ch = 0; ch < c; ch++) row[ch]! += x[o + ch]!;
        }
        for (let ch = 0; ch < c; ch++) out[s * c + ch] = row[ch]! / p;
      }
    }
    return out;
  }
}

class ClsToken implements Reducer {
  readonly name = 'cls' as const;
  readonly describe: string;
  constructor(
    readonly dim: number,
    private readonly tokens: number,
  ) {
    this.describe = `cls (token 0 of ${tokens}, width ${dim})`;
  }
  async apply(t: LayerTensor): Promise<Float32Array> {
    const n = t.shape[0]!;
    const out = new Float32Array(n * this.dim);
    for (let s = 0; s < n; s++) out.set(t.data.subarray(s * this.tokens * this.dim, s * this.tokens * this.dim + this.dim), s * this.dim);
    return out;
  }
}

/**
 * Seeded Gaussian random projection of the flattened tensor to k dims, entries N(0, 1/k), so
 * squared norms are preserved in expectation (Johnson–Lindenstrauss). The product runs through
 * onnxruntime, not JavaScript loops.
 */
class Project implements Reducer {
  readonly name = 'project' as const;
  readonly describe: string;
  private readonly matrix: Float32Array;
  constructor(
    private readonly inDim: number,
    readonly dim: number,
    seed: number,
  ) {
    const rng = new Rng(seed);
    const scale = 1 / Math.sqrt(dim);
    this.matrix = new Float32Array(inDim * dim);
    for (let i = 0; i < this.matrix.length; i++) this.matrix[i] = rng.normal() * scale;
    this.describe = `project (seeded Gaussian ${inDim}→${dim}, seed ${seed})`;
  }
  async apply(t: LayerTensor): Promise<Float32Array> {
    const n = t.shape[0]!;
    return toFloat32(await matmul(t.data, this.matrix, n, this.inDim, this.dim));
  }
}

function toFloat32(a: Float32Array | Float64Array): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

/** Build the reducer for one layer; `seed` feeds only `project`. */
export function makeReducer(layer: LayerInfo, spec: ReductionSpec, seed = 0): Reducer {
  const dims = perSample(layer.shape);
  const size = product(dims);
  const rank4 = dims.length === 3 && (layer.layout === 'NCHW' || layer.layout === 'NHWC');
  const tokens = dims.length === 2 && layer.layout === 'NTD';
  switch (spec.name) {
    case 'flatten':
      return new Flatten(size);
    case 'gap':
      if (rank4) {
        return layer.layout === 'NCHW'
          ? new MeanOver('gap', 'channels-first', dims[0]!, dims[1]! * dims[2]!)
          : new MeanOver('gap', 'channels-last', dims[2]!, dims[0]! * dims[1]!);
      }
      if (tokens) return new MeanOver('mean-token', 'channels-last', dims[1]!, dims[0]!);
      throw new UsageError(`reduction gap needs a conv map, but layer \`${layer.id}\` has shape [${dims.join(',')}]`, 'use flatten for dense layers');
    case 'mean-token':
      if (!tokens) throw new UsageError(`reduction mean-token needs a token sequence [T,D], but layer \`${layer.id}\` has shape [${dims.join(',')}]`);
      return new MeanOver('mean-token', 'channels-last', dims[1]!, dims[0]!);
    case 'cls':
      if (!tokens) throw new UsageError(`reduction cls needs a token sequence [T,D], but layer \`${layer.id}\` has shape [${dims.join(',')}]`);
      return new ClsToken(dims[1]!, dims[0]!);
    case 'project':
      return new Project(size, spec.k ?? 256, (seed ^ hashString(layer.id)) >>> 0);
    case 'auto': {
      const cap = spec.k ?? AUTO_MAX_DIM;
      if (size <= cap) return new Flatten(size);
      if (rank4) return makeReducer(layer, { name: 'gap' }, seed);
      if (tokens) return makeReducer(layer, { name: 'mean-token' }, seed);
      return makeReducer(layer, { name: 'project', k: Math.min(cap, 1024) }, seed);
    }
  }
}

export interface ReductionPlan {
  /** One reducer per layer, in the order given. */
  reducers: Reducer[];
  /** The model's rule in one line, for the manifest and report (e.g. 'auto: conv maps gap (widest 21632 > 2048), tokens mean-token, vectors whole'). */
  rule: string;
}

type Shape = 'map' | 'tokens' | 'vector' | 'other';

function shapeKind(layer: LayerInfo): Shape {
  const rank = layer.shape.length - 1;
  if (rank === 3 && (layer.layout === 'NCHW' || layer.layout === 'NHWC')) return 'map';
  if (rank === 2 && layer.layout === 'NTD') return 'tokens';
  if (rank === 1) return 'vector';
  return 'other';
}

/** A reducer whose describe carries its departure from the model's rule. */
function withNote(r: Reducer, note: string): Reducer {
  return { name: r.name, dim: r.dim, describe: `${r.describe}; ${note}`, note, apply: (t) => r.apply(t) };
}

/**
 * The reductions of one model's selected layers, chosen together by the rule in this file's
 * header. Names other than auto apply to every layer as before, except that a named pooling
 * keeps vectors whole (noted) when other layers are of the kind it pools.
 */
export function planReductions(layers: readonly LayerInfo[], spec: ReductionSpec, seed = 0): ReductionPlan {
  const kinds = layers.map(shapeKind);
  if (spec.name !== 'auto') {
    const pools = spec.name === 'gap' || spec.name === 'cls' || spec.name === 'mean-token';
    const pooled = (k: Shape): boolean => (spec.name === 'gap' ? k === 'map' || k === 'tokens' : k === 'tokens');
    const lenient = pools && kinds.some(pooled);
    const reducers = layers.map((l, i) =>
      lenient && kinds[i] === 'vector' ? withNote(makeReducer(l, { name: 'flatten' }, seed), `a vector: kept whole, not ${spec.name}`) : makeReducer(l, spec, seed),
    );
    const name = spec.name === 'project' ? `project:${spec.k ?? 256}` : spec.name;
    return { reducers, rule: lenient && kinds.includes('vector') ? `${name} (vectors kept whole)` : `${name} on every layer` };
  }
  const cap = spec.k ?? AUTO_MAX_DIM;
  const size = (l: LayerInfo): number => product(perSample(l.shape));
  const maps = layers.filter((_, i) => kinds[i] === 'map');
  const widestMap = Math.max(0, ...maps.map(size));
  const mapRule: 'flatten' | 'gap' = widestMap > cap ? 'gap' : 'flatten';
  const projectTo = Math.min(cap, 1024);
  const reducers = layers.map((l, i): Reducer => {
    const kind = kinds[i]!;
    const base = kind === 'map' ? makeReducer(l, { name: mapRule }, seed) : kind === 'tokens' ? makeReducer(l, { name: 'mean-token' }, seed) : new Flatten(size(l));
    if (base.dim <= cap) return kind === 'other' ? withNote(base, 'not a conv map, token sequence or vector: flattened') : base;
    const projected = makeReducer(l, { name: 'project', k: projectTo }, seed);
    return withNote(projected, `instead of ${base.name}: ${base.dim} values exceed the auto cap of ${cap}`);
  });
  const parts: string[] = [];
  if (maps.length) parts.push(mapRule === 'gap' ? `conv maps gap (widest has ${widestMap} values > cap ${cap})` : `conv maps flatten (all ≤ cap ${cap})`);
  if (kinds.includes('tokens')) parts.push('tokens mean-token');
  if (kinds.includes('vector')) parts.push('vectors whole');
  if (reducers.some((r) => r.note)) parts.push(`wider layers projected to ${projectTo}`);
  return { reducers, rule: `auto: ${parts.join(', ') || 'nothing to reduce'}` };
}
