/**
 * File IO for TF.js models without tfjs-node: `tf.io.fileSystem` lives in tfjs-node, which cannot
 * be installed offline, so model.json + weight shards are read (and written) here with node:fs.
 * Errors are one line and name the file, because a broken model directory is a user problem.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as tfTypes from './tf-types.js';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { checkLayersTopology } from './tfjs-topology.js';
import { mkdirSteps } from '../util/mkdir-steps.js';

type ModelArtifacts = tfTypes.io.ModelArtifacts;
type IOHandler = tfTypes.io.IOHandler;
type WeightsManifestEntry = tfTypes.io.WeightsManifestEntry;
type WeightsManifestGroupConfig = tfTypes.io.WeightsManifestConfig[number];

/** Bytes per stored element; strings are variable-length, so only their 4-byte length prefix counts. */
const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  string: 4,
  float16: 2,
  uint16: 2,
  uint8: 1,
};

/** The subset of model.json we read, with every field checked before use. */
export interface ModelJsonFile {
  modelTopology?: unknown;
  weightsManifest?: unknown;
  format?: unknown;
  generatedBy?: unknown;
  convertedBy?: unknown;
  signature?: unknown;
  userDefinedMetadata?: unknown;
  modelInitializer?: unknown;
  initializerSignature?: unknown;
  trainingConfig?: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Accept a model directory too: `models/foo/` means `models/foo/model.json`. */
async function resolveModelJson(p: string): Promise<string> {
  const abs = path.resolve(p);
  const st = await fs.stat(abs).catch(() => null);
  if (!st) throw new UsageError(`model file \`${p}\` not found`);
  if (st.isDirectory()) {
    const inner = path.join(abs, 'model.json');
    if (!(await fs.stat(inner).catch(() => null))) throw new UsageError(`\`${p}\` is a directory without a model.json`);
    return inner;
  }
  return abs;
}

export async function readModelJson(modelJsonPath: string): Promise<{ file: string; json: ModelJsonFile }> {
  const file = await resolveModelJson(modelJsonPath);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new RuntimeFailure(`cannot read \`${file}\`: ${errorMessage(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RuntimeFailure(`\`${file}\` is not valid JSON (${errorMessage(e).split('\n')[0]})`);
  }
  if (!isRecord(parsed)) throw new RuntimeFailure(`\`${file}\` is not a TF.js model.json (top level is not an object)`);
  return { file, json: parsed };
}

function checkManifest(file: string, raw: unknown): WeightsManifestGroupConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new RuntimeFailure(`\`${file}\`: weightsManifest is not a list`);
  return raw.map((g, i) => {
    if (!isRecord(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights) || !g.paths.every((p) => typeof p === 'string')) {
      throw new RuntimeFailure(`\`${file}\`: weightsManifest[${i}] needs \`paths\` and \`weights\` lists`);
    }
    for (const w of g.weights) {
      if (!isRecord(w) || typeof w.name !== 'string' || !Array.isArray(w.shape) || typeof w.dtype !== 'string') {
        throw new RuntimeFailure(`\`${file}\`: weightsManifest[${i}] has a weight without name/shape/dtype`);
      }
      // A shape of 2.5 or -1 made the weight's byte count fractional or negative (a RangeError deep
      // in the weight check, found by the fuzzer).
      if (!w.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
        throw new RuntimeFailure(`\`${file}\`: weight \`${w.name}\` has shape [${w.shape.map(String).join(', ')}]; dimensions must be whole numbers ≥ 0`);
      }
    }
    return g as unknown as WeightsManifestGroupConfig;
  });
}

/** Bytes the weight specs need; a lower bound when string weights are present. */
export function requiredWeightBytes(specs: readonly WeightsManifestEntry[]): number {
  let total = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const dtype = s.quantization?.dtype ?? s.dtype;
    const bytes = DTYPE_BYTES[dtype];
    if (bytes === undefined) throw new RuntimeFailure(`weight \`${s.name}\` has unknown dtype \`${dtype}\``);
    total += n * bytes;
  }
  return total;
}

/**
 * NaN or Inf in a float32 weight is refused at load. The activations would not always show it:
 * on the wasm backend a ReLU after a NaN bias returns 0, and the audit went on to report numbers
 * for a broken model.
 */
function checkFiniteWeights(file: string, specs: readonly WeightsManifestEntry[], data: ArrayBuffer): void {
  let offset = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const dtype = s.quantization?.dtype ?? s.dtype;
    const bytes = n * DTYPE_BYTES[dtype]!;
    if (dtype === 'float32') {
      const w = new Float32Array(data.slice(offset, offset + bytes));
      for (let i = 0; i < n; i++) {
        if (!Number.isFinite(w[i]!)) {
          throw new RuntimeFailure(`weight \`${s.name}\` of ${path.basename(file)} holds ${w[i]} (value ${i} of ${n}): the model is corrupt`, 're-download, re-export or retrain the model');
        }
      }
    }
    offset += bytes;
  }
}

/**
 * A weight path comes from inside model.json, so it is not the user's choice: it must name a file
 * in the model's own folder (or below). Absolute paths, `..` segments (as written or
 * percent-encoded) and symlinks that lead outside are refused, before anything is opened.
 */
function checkConfined(file: string, p: string, candidate: string): void {
  const refuse = (why: string): never => {
    throw new RuntimeFailure(`weight path \`${p}\` in ${path.basename(file)} ${why}; a model may only read files in its own folder`, 'the model.json is corrupt or hostile; re-export or re-download it');
  };
  if (p === '' || candidate.includes('\0')) refuse('is not a file name');
  if (path.isAbsolute(candidate) || path.win32.isAbsolute(candidate) || /^[a-z][a-z0-9+.-]*:/i.test(candidate)) refuse('is absolute');
  if (candidate.split(/[\\/]+/).includes('..')) refuse('climbs out with `..`');
}

/** Converters percent-encode odd characters in shard names; try the name as written first. */
async function locateShard(file: string, dir: string, p: string): Promise<string | null> {
  const written = [p];
  try {
    const decoded = decodeURIComponent(p);
    if (decoded !== p) written.push(decoded);
  } catch {
    // Not percent-encoded: only the literal name applies.
  }
  for (const w of written) checkConfined(file, p, w);
  const realDir = await fs.realpath(dir);
  for (const w of written) {
    const c = path.resolve(dir, w);
    const st = await fs.stat(c).catch(() => null);
    if (!st?.isFile()) continue;
    const real = await fs.realpath(c);
    const rel = path.relative(realDir, real);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new RuntimeFailure(`weight path \`${p}\` in ${path.basename(file)} is a link to ${real}, outside the model's folder; a model may only read files in its own folder`, 'copy the weights into the model folder if they are yours');
    }
    return c;
  }
  return null;
}

/** Read model.json and all its shards into ModelArtifacts (one concatenated weight buffer). */
export async function loadArtifacts(modelJsonPath: string): Promise<ModelArtifacts> {
  return (await loadModelFiles(modelJsonPath)).artifacts;
}

/** As loadArtifacts, also returning the model.json actually read (a directory resolves to its model.json). */
export async function loadModelFiles(modelJsonPath: string): Promise<{ file: string; artifacts: ModelArtifacts }> {
  const { file, json } = await readModelJson(modelJsonPath);
  const dir = path.dirname(file);
  const groups = checkManifest(file, json.weightsManifest);
  // Before TF.js sees it: a dangling reference in the layer graph makes TF.js loop forever.
  checkLayersTopology(file, json.modelTopology);
  const weightSpecs: WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const g of groups) {
    weightSpecs.push(...g.weights);
    for (const p of g.paths) {
      const shard = await locateShard(file, dir, p);
      if (!shard) {
        throw new RuntimeFailure(
          `weight shard \`${p}\` listed in ${path.basename(file)} is missing (expected at ${path.resolve(dir, p)})`,
        );
      }
      buffers.push(await fs.readFile(shard));
    }
  }
  const have = buffers.reduce((a, b) => a + b.byteLength, 0);
  const need = requiredWeightBytes(weightSpecs);
  if (have < need) {
    throw new RuntimeFailure(
      `weights of \`${file}\` are truncated: the shards hold ${have} bytes, the manifest needs ${need}`,
      're-download or re-export the model',
    );
  }
  if (have > need) {
    // Converters write shards of exactly the manifest's size; extra bytes mean the shards and the
    // model.json do not belong together, and reading the first `need` bytes would load wrong weights.
    throw new RuntimeFailure(
      `weights of \`${file}\` do not match its manifest: the shards hold ${have} bytes, the manifest needs ${need}`,
      'the weight files may belong to another model.json; re-download or re-export the model',
    );
  }
  const joined = Buffer.concat(buffers, have);
  // A fresh ArrayBuffer of exactly the weights: Buffer.concat may hand back a slice of a pooled one.
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength) as ArrayBuffer;

  checkFiniteWeights(file, weightSpecs, weightData);
  const artifacts: ModelArtifacts = { weightSpecs, weightData };
  if (isRecord(json.modelTopology)) artifacts.modelTopology = json.modelTopology;
  if (typeof json.format === 'string') artifacts.format = json.format;
  if (typeof json.generatedBy === 'string') artifacts.generatedBy = json.generatedBy;
  if (typeof json.convertedBy === 'string' || json.convertedBy === null) artifacts.convertedBy = json.convertedBy;
  if (isRecord(json.signature)) artifacts.signature = json.signature;
  if (isRecord(json.modelInitializer)) artifacts.modelInitializer = json.modelInitializer;
  if (isRecord(json.initializerSignature)) artifacts.initializerSignature = json.initializerSignature;
  if (isRecord(json.userDefinedMetadata)) artifacts.userDefinedMetadata = json.userDefinedMetadata as Record<string, {}>;
  if (isRecord(json.trainingConfig)) artifacts.trainingConfig = json.trainingConfig as unknown as tfTypes.io.TrainingConfig;
  return { file, artifacts };
}

/** IOHandler for `tf.loadLayersModel` / `tf.loadGraphModel` reading a model.json from disk. */
export function fileHandler(modelJsonPath: string): IOHandler {
  return { load: () => loadArtifacts(modelJsonPath) };
}

function joinWeightData(w: tfTypes.io.WeightData | undefined): Uint8Array {
  if (w === undefined) return new Uint8Array(0);
  if (!Array.isArray(w)) return new Uint8Array(w);
  const total = w.reduce((a, b) => a + b.byteLength, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const b of w) {
    out.set(new Uint8Array(b), off);
    off += b.byteLength;
  }
  return out;
}

/** Write then rename, so a reader never sees half a file and a crash leaves the old one intact. */
async function writeAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** Save handler: `model.save(saveToDir(dir))` writes `dir/model.json` + `dir/weights.bin`. */
export function saveToDir(dir: string): IOHandler {
  return {
    save: async (artifacts: ModelArtifacts): Promise<tfTypes.io.SaveResult> => {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new RuntimeFailure('cannot save a binary (GraphDef) topology as model.json');
      }
      const weights = joinWeightData(artifacts.weightData);
      const weightSpecs = artifacts.weightSpecs ?? [];
      const modelJson: Record<string, unknown> = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: weightSpecs }],
      };
      for (const k of ['trainingConfig', 'signature', 'userDefinedMetadata', 'modelInitializer', 'initializerSignature'] as const) {
        if (artifacts[k] !== undefined) modelJson[k] = artifacts[k];
      }
      const text = JSON.stringify(modelJson);
      try {
        await mkdirSteps(dir);
        // Weights first: a model.json must never point at weights that are not there yet.
        await writeAtomic(path.join(dir, 'weights.bin'), weights);
        await writeAtomic(path.join(dir, 'model.json'), text);
      } catch (e) {
        throw new RuntimeFailure(`cannot save model to \`${dir}\`: ${errorMessage(e)}`);
      }
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology ?? null).length,
          weightSpecsBytes: JSON.stringify(weightSpecs).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },
  };
}
