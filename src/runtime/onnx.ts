/**
 * ONNX models through onnxruntime-node (CPU). onnxruntime only returns graph outputs, so every
 * input-dependent node output is appended to graph.output before the session is created; one
 * dry run then tells which of them are float tensors and what shape they have. Models exported
 * with a batch fixed at 1 get a symbolic batch when that provably gives the same numbers, and
 * are otherwise run one sample at a time — callers never see the difference.
 */
import { readFile, stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { Rng } from '../util/rng.js';
import {
  ELEM_FLOAT,
  GraphError,
  analyzeGraph,
  decodeModel,
  defaultSelection,
  layerDepths,
  encodeModel,
  exposeTensors,
  freeBatchDim,
  hasExternalData,
  type Dim,
  type GraphAnalysis,
  type ModelProto,
} from './onnx-graph.js';
import { kindAndLayout } from './layer-kind.js';
import { layerNotFound } from './select.js';
import { onnxRunnerHead } from './classifier-head.js';
import type { ClassifierHead, LayerInfo, LayerLayout, LayerTensor, ModelRunner } from './types.js';

/** Largest fixed batch a model input may declare (layer discovery runs the model at that batch). */
export const MAX_FIXED_BATCH = 1024;

export interface OnnxOpenOptions {
  /** Intra-op threads for onnxruntime; default: onnxruntime's choice (all cores). */
  threads?: number;
  /**
   * Per-sample input shape (without batch) for models whose input has free non-batch dims
   * (e.g. [3, 224, 224] for an input declared [N, 3, H, W]). Layer shapes are measured at it.
   */
  inputShape?: number[];
}

/**
 * How batches reach the session: 'native' (the model has a free batch dim), 'rewritten' (a fixed
 * batch was made symbolic and checked to give the same result), 'per-sample' (the rewrite failed
 * or changed results, so `run` feeds the model its fixed batch size at a time).
 */
export type BatchMode = 'native' | 'rewritten' | 'per-sample';

const ORT_VERSION = ort.env.versions.node ?? ort.env.versions.common;

/** Error reasons from protobufjs/onnxruntime can span lines; the CLI prints one. */
function oneLine(reason: string, max = 300): string {
  const s = withoutOrtInternals(reason).replace(/\s+/g, ' ').trim();
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/** A C++ source location as onnxruntime writes it: `/onnxruntime_src/…/model.cc:202 ` or `tensorprotoutils.cc:1469 `. */
const ORT_SOURCE = /(?:[A-Za-z]:)?(?:[\w.+-]*[\\/])*[\w+-]+\.(?:cc|cpp|cxx|c|h|hpp):\d+\s*/g;
/** onnxruntime's status prefix: `[ONNXRuntimeError] : 1 : FAIL : `. */
const ORT_STATUS = /\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*[A-Z_]+\s*:\s*/g;

/**
 * onnxruntime's reason without its internals: the status prefix, the source file:line and the
 * C++ function that follows it (`void onnxruntime::Graph::Resolve(…) const`, or a bare
 * `ValidateEmbeddedTensorProtoDataSizeAndShape`) are removed; the reason after them is kept. A user
 * needs "Unsupported model IR version: 99", not onnxruntime's source tree.
 */
export function withoutOrtInternals(message: string): string {
  const text = message.replace(ORT_STATUS, '');
  let out = '';
  let from = 0;
  for (const m of text.matchAll(ORT_SOURCE)) {
    out += text.slice(from, m.index);
    // "…failed.endian_utils.cc:66 …": keep the words apart.
    if (out !== '' && !/\s$/.test(out)) out += ' ';
    from = m.index + m[0].length;
    from = skipFunction(text, from);
  }
  return out + text.slice(from);
}

/** Past the C++ function name or signature that onnxruntime writes after a source location. */
function skipFunction(text: string, from: number): number {
  const open = text.indexOf('(', from);
  // A signature: words up to the first '(' with a '::' among them, then balanced parentheses.
  if (open >= 0 && text.slice(from, open).includes('::') && !/[.!?]\s/.test(text.slice(from, open))) {
    let depth = 0;
    for (let i = open; i < text.length; i++) {
      if (text[i] === '(') depth++;
      else if (text[i] === ')' && --depth === 0) {
        const tail = /^(?: const)?(?: \[with [^\]]*\])?\s*/.exec(text.slice(i + 1))!;
        return i + 1 + tail[0].length;
      }
    }
    return from;
  }
  // A bare function name: one CamelCase or qualified identifier before the reason.
  const bare = /^(?:[A-Za-z_]\w*::)*(?:[A-Z][a-z0-9]+){2,}[A-Za-z0-9]*\s+/.exec(text.slice(from));
  return bare ? from + bare[0].length : from;
}

function fmtShape(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? 'N' : String(d))).join(',')}]`;
}

function product(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

type Outputs = ort.InferenceSession.OnnxValueMapType;

function floatTensor(v: ort.OnnxValue | undefined): { data: Float32Array; dims: readonly number[] } | null {
  if (!v || !(v instanceof ort.Tensor) || v.type !== 'float32' || !(v.data instanceof Float32Array)) return null;
  return { data: v.data, dims: v.dims };
}

function sampleInput(rng: Rng, n: number, perSample: readonly number[]): ort.Tensor {
  const data = new Float32Array(n * product(perSample));
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  return new ort.Tensor('float32', data, [n, ...perSample]);
}

/**
 * Whether the batched run reproduces the per-chunk runs for every layer: same per-sample shape,
 * and values within a tolerance loose enough for reordered float sums but far below what a
 * batch mixed into features (a Reshape with a hard-coded 1) produces.
 */
function sameAsChunks(ids: readonly string[], batched: Outputs, chunks: readonly Outputs[]): boolean {
  for (const id of ids) {
    const big = floatTensor(batched[id]);
    if (!big) return false;
    let offset = 0;
    let rows = 0;
    for (const c of chunks) {
      const small = floatTensor(c[id]);
      if (!small || small.dims.length !== big.dims.length) return false;
      for (let k = 1; k < small.dims.length; k++) if (small.dims[k] !== big.dims[k]) return false;
      rows += small.dims[0]!;
      let maxAbs = 0;
      for (const x of small.data) maxAbs = Math.max(maxAbs, Math.abs(x));
      const tol = 1e-3 * (1 + maxAbs);
      if (offset + small.data.length > big.data.length) return false;
      for (let i = 0; i < small.data.length; i++) {
        const d = Math.abs(big.data[offset + i]! - small.data[i]!);
        if (!(d <= tol)) {
          // NaN in both is the same result; anything else is a mismatch.
          if (!(Number.isNaN(big.data[offset + i]!) && Number.isNaN(small.data[i]!))) return false;
        }
      }
      offset += small.data.length;
    }
    if (rows !== big.dims[0] || offset !== big.data.length) return false;
  }
  return true;
}

/** The execution provider every ONNX session of this process uses (--execution-provider); cpu by default. */
let executionProvider = 'cpu';

/** The providers the installed onnxruntime-node lists; `bundled: false` ones need their own libraries (e.g. CUDA). */
export function installedExecutionProviders(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

export function currentExecutionProvider(): string {
  return executionProvider;
}

function describeProviders(): string {
  return installedExecutionProviders().map((b) => (b.bundled ? b.name : `${b.name} (needs its libraries installed)`)).join(', ');
}

/**
 * Chooses the execution provider for the sessions opened from now on. A name this onnxruntime
 * does not list is a usage error naming the ones it does; one it lists but cannot start fails
 * when the first session is created, with the same list.
 */
export function useExecutionProvider(name: string): void {
  if (!installedExecutionProviders().some((b) => b.name === name)) {
    throw new UsageError(`execution provider \`${name}\` is not offered by the installed onnxruntime-node; it offers ${describeProviders()}`);
  }
  executionProvider = name;
}

function sessionOptions(opts: OnnxOpenOptions): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: [executionProvider],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // Warnings (unused initializers and the like) would interleave with CLI output, and errors
    // are logged with onnxruntime's source locations before they come back as the exception we
    // report in one line: only fatal ones are left to its logger.
    logSeverityLevel: 4,
  };
  if (opts.threads !== undefined) {
    if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new UsageError(`threads must be a positive integer, got ${opts.threads}`);
    o.intraOpNumThreads = opts.threads;
    o.interOpNumThreads = 1;
  }
  return o;
}

/** Per-sample input dims with free dims filled from opts.inputShape. */
function resolveInputShape(path: string, a: GraphAnalysis, opts: OnnxOpenOptions): { batch: Dim; perSample: number[] } {
  const given = opts.inputShape;
  const dims = a.inputDims;
  if (dims === null) {
    if (!given) throw new UsageError(`model ${path} declares no shape for input ${a.inputName}`, 'pass the per-sample input shape (inputShape)');
    return { batch: null, perSample: [...given] };
  }
  if (dims.length === 0) throw new RuntimeFailure(`model ${path} is not supported: its input ${a.inputName} is a scalar, with no batch dimension`);
  const rest = dims.slice(1);
  if (given) {
    const fits = given.length === rest.length && rest.every((d, i) => typeof d !== 'number' || d === given[i]);
    if (!fits) {
      throw new UsageError(`input shape ${fmtShape([null, ...given])} does not fit model input ${fmtShape(dims.map((d) => (typeof d === 'number' ? d : null)))}`);
    }
    return { batch: dims[0]!, perSample: [...given] };
  }
  const free = rest.some((d) => typeof d !== 'number');
  if (free) {
    throw new UsageError(
      `model ${path} input ${a.inputName} has free dims [${dims.map((d) => d ?? '?').join(',')}]`,
      'pass the per-sample input shape (inputShape), e.g. [3,224,224]',
    );
  }
  return { batch: dims[0]!, perSample: rest as number[] };
}

export class OnnxRunner implements ModelRunner {
  readonly format = 'onnx' as const;
  readonly backend = `onnxruntime-node ${ORT_VERSION} cpu`;
  private readonly byId: Map<string, LayerInfo>;
  private readonly perSample: number[];
  private disposed = false;

  /** Use openOnnxModel. */
  constructor(
    readonly path: string,
    private session: ort.InferenceSession,
    readonly inputName: string,
    readonly inputShape: (number | null)[],
    readonly batchMode: BatchMode,
    /** Batch size the session accepts in 'per-sample' mode (the model's fixed batch). */
    private readonly fixedBatch: number,
    private readonly layerList: LayerInfo[],
    /** The graph as `session` runs it, every candidate exposed; null where sessions per fetch set are not made. */
    private readonly graph: { model: ModelProto; outputs: number; opts: OnnxOpenOptions } | null = null,
  ) {
    this.byId = new Map(layerList.map((l) => [l.id, l]));
    this.perSample = inputShape.slice(1) as number[];
  }

  /**
   * Sessions that return only the tensors asked for, by fetch set. Every extra graph output must
   * be kept in memory and stops onnxruntime from fusing its producer with the next op (Conv+Relu,
   * Conv+Add, MatMul+Add, …), so the all-exposed session of the dry run costs a model with many
   * layers far more than the few layers an audit fetches.
   */
  private readonly fetchSessions = new Map<string, ort.InferenceSession>();
  private dryReleased = false;

  private async sessionFor(fetch: readonly string[]): Promise<ort.InferenceSession> {
    if (!this.graph) return this.session;
    const key = [...fetch].sort().join('\u0000');
    const hit = this.fetchSessions.get(key);
    if (hit) return hit;
    const g = this.graph.model.graph!;
    const all = g.output!;
    const keep = all.slice(0, this.graph.outputs);
    const named = new Set(keep.map((o) => o.name));
    g.output = [...keep, ...all.filter((o) => !named.has(o.name) && fetch.includes(o.name ?? ''))];
    let bytes: Uint8Array;
    try {
      bytes = encodeModel(this.graph.model);
    } finally {
      g.output = all;
    }
    const session = await createSession(bytes, this.graph.opts);
    if (!this.dryReleased) {
      // The all-exposed session only served the dry run: its weights need not stay in memory twice.
      this.dryReleased = true;
      await this.session.release();
    }
    // A few fetch sets per run at most (audit layers, then output only, …): keep the latest two.
    if (this.fetchSessions.size >= 2) {
      const [oldKey, old] = this.fetchSessions.entries().next().value!;
      this.fetchSessions.delete(oldKey);
      await old.release();
    }
    this.fetchSessions.set(key, session);
    return session;
  }

  layers(): LayerInfo[] {
    return this.layerList.map((l) => ({ ...l, shape: [...l.shape] }));
  }

  async classifierHead(label = this.path): Promise<ClassifierHead> {
    return onnxRunnerHead(this, label);
  }

  /** Already ONNX: nothing to export. */
  exportableLayersModel(): null {
    return null;
  }

  async run(input: { data: Float32Array; shape: number[] }, layerIds: readonly string[]): Promise<Map<string, LayerTensor>> {
    if (this.disposed) throw new Error(`runner for ${this.path} used after dispose()`);
    const ids = [...new Set(layerIds)];
    for (const id of ids) if (!this.byId.has(id)) throw layerNotFound(id, [...this.byId.keys()], this.path);

    const shape = input.shape;
    const n = shape[0] ?? 0;
    const per = product(this.perSample);
    const given = product(shape.slice(1));
    if (shape.length < 1 || !Number.isInteger(n) || n < 0 || given !== per) {
      throw new UsageError(`input shape ${fmtShape(shape)} does not fit model input ${fmtShape(this.inputShape)}`);
    }
    if (input.data.length !== n * per) {
      throw new UsageError(`input has ${input.data.length} values but shape ${fmtShape(shape)} needs ${n * per}`);
    }

    const out = new Map<string, LayerTensor>();
    const fetch = ids.filter((id) => id !== this.inputName);
    if (n === 0) {
      for (const id of ids) out.set(id, { data: new Float32Array(0), shape: [0, ...(this.byId.get(id)!.shape.slice(1) as number[])] });
      return out;
    }
    if (fetch.length > 0) {
      const got = this.batchMode === 'per-sample' ? await this.runChunked(input.data, n, fetch) : await this.runOnce(input.data, n, fetch);
      for (const [id, t] of got) out.set(id, t);
    }
    const result = new Map<string, LayerTensor>();
    for (const id of ids) {
      // The input is a layer too (a baseline for probes); hand back a copy in the model's shape.
      result.set(id, id === this.inputName ? { data: input.data.slice(), shape: [n, ...this.perSample] } : out.get(id)!);
    }
    return result;
  }

  private async runSession(data: Float32Array, n: number, fetch: readonly string[]): Promise<Outputs> {
    const feeds = { [this.inputName]: new ort.Tensor('float32', data, [n, ...this.perSample]) };
    try {
      const session = await this.sessionFor(fetch);
      return await session.run(feeds, fetch);
    } catch (e) {
      throw new RuntimeFailure(`model ${this.path} failed on a batch of ${n}: ${oneLine(errorMessage(e))}`);
    }
  }

  private async runOnce(data: Float32Array, n: number, fetch: readonly string[]): Promise<Map<string, LayerTensor>> {
    const res = await this.runSession(data, n, fetch);
    const out = new Map<string, LayerTensor>();
    for (const id of fetch) {
      const t = floatTensor(res[id]);
      if (!t) throw new RuntimeFailure(`model ${this.path}: layer ${id} did not come back as float32`);
      // onnxruntime-node copies outputs into fresh JS ArrayBuffers, so these views stay valid.
      out.set(id, { data: t.data, shape: [...t.dims] });
    }
    return out;
  }

  private async runChunked(data: Float32Array, n: number, fetch: readonly string[]): Promise<Map<string, LayerTensor>> {
    const b = this.fixedBatch;
    const per = product(this.perSample);
    const out = new Map<string, LayerTensor>();
    for (const id of fetch) {
      const s = this.byId.get(id)!.shape.slice(1) as number[];
      out.set(id, { data: new Float32Array(n * product(s)), shape: [n, ...s] });
    }
    for (let start = 0; start < n; start += b) {
      const m = Math.min(b, n - start);
      let chunk = data.subarray(start * per, (start + m) * per);
      if (m < b) {
        // The model only takes batches of exactly b: pad with zeros and drop the extra rows.
        const padded = new Float32Array(b * per);
        padded.set(chunk);
        chunk = padded;
      }
      const res = await this.runSession(chunk, b, fetch);
      for (const id of fetch) {
        const t = floatTensor(res[id]);
        const dst = out.get(id)!;
        const rowLen = dst.data.length / n;
        if (!t || t.data.length !== b * rowLen) throw new RuntimeFailure(`model ${this.path}: layer ${id} came back with shape [${t?.dims.join(',') ?? '?'}]`);
        dst.data.set(t.data.subarray(0, m * rowLen), start * rowLen);
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.fetchSessions.values()) await s.release();
    this.fetchSessions.clear();
    if (!this.dryReleased) await this.session.release();
  }
}

async function createSession(bytes: Uint8Array, opts: OnnxOpenOptions): Promise<ort.InferenceSession> {
  if (executionProvider === 'cpu') return ort.InferenceSession.create(bytes, sessionOptions(opts));
  try {
    return await ort.InferenceSession.create(bytes, sessionOptions(opts));
  } catch (e) {
    throw new RuntimeFailure(`execution provider \`${executionProvider}\` could not be started: ${oneLine(errorMessage(e))}`, `the installed onnxruntime-node offers ${describeProviders()}; use --execution-provider cpu`);
  }
}

/**
 * Layers the producer declared as the default selection (layerprobe's exporter writes the TF.js
 * defaults under `layerprobe.default_layers`, because ONNX alone cannot mark a transformer block).
 * Used only when every declared id exists, so a hand-edited graph falls back to the op rules.
 */
function declaredDefaults(model: ModelProto, layerIds: ReadonlySet<string>): Set<string> | null {
  const entry = (model.metadataProps ?? []).find((p) => p.key === 'layerprobe.default_layers');
  if (!entry?.value) return null;
  try {
    const ids = JSON.parse(entry.value) as unknown;
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id): id is string => typeof id === 'string' && layerIds.has(id))) return null;
    return new Set(ids);
  } catch {
    return null;
  }
}

export async function openOnnxModel(path: string, opts: OnnxOpenOptions = {}): Promise<OnnxRunner> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new UsageError(`model ${path} is not a file`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`model file ${path} not found`);
  }
  const original = new Uint8Array(await readFile(path));
  const invalid = (reason: string): RuntimeFailure => new RuntimeFailure(`model ${path} is not a valid ONNX model: ${oneLine(reason)}`);
  sessionOptions(opts); // validate options before any work

  let analysis: GraphAnalysis;
  let model: ModelProto;
  try {
    try {
      model = decodeModel(original);
    } catch (e) {
      throw new Error(`cannot decode it as an ONNX ModelProto, truncated or not ONNX (${errorMessage(e)})`);
    }
    analysis = analyzeGraph(model);
  } catch (e) {
    if (e instanceof GraphError && e.unsupported) throw new RuntimeFailure(`model ${path} is not supported: ${oneLine(e.message)}`);
    throw invalid(errorMessage(e));
  }
  if (hasExternalData(model)) {
    throw new RuntimeFailure(`model ${path} is not supported: its weights are stored as external data`, 'save it as a single .onnx file');
  }
  if (analysis.inputElemType !== 0 && analysis.inputElemType !== ELEM_FLOAT) {
    throw new RuntimeFailure(`model ${path} is not supported: input ${analysis.inputName} is not float32 (ONNX elem_type ${analysis.inputElemType})`);
  }
  const { batch, perSample } = resolveInputShape(path, analysis, opts);
  const fixedBatch = typeof batch === 'number' ? batch : null;
  // A fixed batch is run as is to find the layers (and twice over to check a symbolic batch): a
  // mutated file declaring a batch of 100,000 took minutes and ~2 GB before anything was said.
  if (fixedBatch !== null && fixedBatch > MAX_FIXED_BATCH) {
    throw new RuntimeFailure(
      `model ${path} is not supported: its input ${analysis.inputName} has a fixed batch of ${fixedBatch} (layerprobe handles a free batch dimension, or a fixed one up to ${MAX_FIXED_BATCH})`,
      'export it with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={"input": {0: "batch"}}))',
    );
  }

  const declaredOutputs = model.graph!.output?.length ?? 0;
  exposeTensors(model, analysis.candidates);
  const exposed = encodeModel(model);
  let session: ort.InferenceSession;
  try {
    session = await createSession(exposed, opts);
  } catch (e) {
    if (e instanceof RuntimeFailure) throw e; // the execution provider did not start
    // Tell a broken file from a graph our surgery broke: only the latter loads untouched.
    const reason = oneLine(errorMessage(e));
    try {
      const plain = await createSession(original, opts);
      await plain.release();
    } catch (e2) {
      throw invalid(errorMessage(e2));
    }
    throw new RuntimeFailure(`model ${path}: onnxruntime rejected it once its intermediate tensors were exposed: ${reason}`);
  }

  // Dry run: which exposed tensors are per-sample float tensors, and their shapes.
  const rng = new Rng(0x1a7e);
  const dryBatch = fixedBatch ?? 2;
  const chunkA = sampleInput(rng, dryBatch, perSample);
  let dry: Outputs;
  try {
    dry = await session.run({ [analysis.inputName]: chunkA });
  } catch (e) {
    await session.release();
    throw new RuntimeFailure(`model ${path} failed on a sample input of shape ${fmtShape([dryBatch, ...perSample])}: ${oneLine(errorMessage(e))}`);
  }
  const outputs = new Set(analysis.outputNames);
  const layerIds: string[] = [];
  const shapes = new Map<string, number[]>();
  for (const id of analysis.candidates) {
    const t = floatTensor(dry[id]);
    if (!t || t.dims.length === 0 || t.dims[0] !== dryBatch) continue;
    layerIds.push(id);
    shapes.set(id, t.dims.slice(1));
  }
  const selected = defaultSelection(analysis, shapes, declaredDefaults(model, new Set(layerIds)));
  const depths = layerDepths(analysis, new Set(layerIds));
  const inputLayout = kindAndLayout([null, ...perSample], 'NCHW');
  const layers: LayerInfo[] = [
    { id: analysis.inputName, op: 'Input', shape: [null, ...perSample], ...inputLayout, index: 0, defaultSelected: false, isOutput: false },
  ];
  for (const id of layerIds) {
    const s = shapes.get(id)!;
    layers.push({
      id,
      op: analysis.nodes[analysis.producer.get(id)!]!.op,
      shape: [null, ...s],
      ...kindAndLayout([null, ...s], 'NCHW'),
      index: layers.length,
      defaultSelected: selected.has(id),
      isOutput: outputs.has(id),
      depth: depths.get(id),
    });
  }

  let mode: BatchMode = 'native';
  if (fixedBatch !== null) {
    mode = 'per-sample';
    let rewritten: ort.InferenceSession | null = null;
    try {
      freeBatchDim(model, analysis.inputName, fixedBatch);
      rewritten = await createSession(encodeModel(model), opts);
      const chunkB = sampleInput(rng, fixedBatch, perSample);
      const secondRun = await session.run({ [analysis.inputName]: chunkB }, layerIds);
      const both = new Float32Array(2 * chunkA.size);
      both.set(chunkA.data as Float32Array);
      both.set(chunkB.data as Float32Array, chunkA.size);
      // A failure here is an expected outcome, not something to print.
      const quiet: ort.InferenceSession.RunOptions = { logSeverityLevel: 4 };
      const batched = await rewritten.run({ [analysis.inputName]: new ort.Tensor('float32', both, [2 * fixedBatch, ...perSample]) }, layerIds, quiet);
      if (sameAsChunks(layerIds, batched, [dry, secondRun])) mode = 'rewritten';
    } catch {
      // A hard-coded batch in a Reshape and the like: the rewrite fails to load or to run.
    }
    if (mode === 'rewritten' && rewritten) {
      await session.release();
      session = rewritten;
    } else if (rewritten) {
      await rewritten.release();
    }
  }

  // In 'per-sample' mode `model` holds the failed batch rewrite, so runs stay on the dry run's session.
  const graph = mode === 'per-sample' ? null : { model, outputs: declaredOutputs, opts };
  return new OnnxRunner(path, session, analysis.inputName, [null, ...perSample], mode, fixedBatch ?? 1, layers, graph);
}
