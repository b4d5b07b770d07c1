/**
 * The models, dataset and probe specs shipped inside the package, by name, so that examples run
 * from any folder (`shippedModel('fmnist-mlp')` instead of a path into a checkout).
 *
 * Each reference model is shipped once, as its TF.js layers model (model.json + weights.bin). The
 * ONNX twin is derived on demand with the project's own exporter — deterministic, byte-identical
 * to the file the training run wrote, and checked here against the sha256 its card.json records —
 * and cached under ~/.cache/layerprobe/models/ ($XDG_CACHE_HOME honoured). A checkout that still
 * has models/<name>/model.onnx uses that file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { sha256File } from './data/hash.js';
import { packageRoot } from './data/registry.js';
import { RuntimeFailure, UsageError } from './errors.js';
import { exportOnnx } from './export/onnx-export.js';

export const SHIPPED_MODELS = ['fmnist-mlp', 'fmnist-cnn', 'fmnist-vit'] as const;
export type ShippedModelName = (typeof SHIPPED_MODELS)[number];
export type ShippedModelFormat = 'tfjs' | 'onnx';

export const SHIPPED_DATASETS = ['fashion-mnist'] as const;
export const SHIPPED_SPECS = ['fmnist-zoo'] as const;

function isShippedModel(name: string): name is ShippedModelName {
  return (SHIPPED_MODELS as readonly string[]).includes(name);
}

function unknownName(kind: string, name: string, known: readonly string[]): UsageError {
  return new UsageError(`there is no shipped ${kind} \`${name}\``, `shipped ${kind}s: ${known.join(', ')}`);
}

/** Where derived shipped files are cached, per package version. */
export function shippedCacheDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : path.join(env.HOME ?? homedir(), '.cache');
  const version = (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return path.join(base, 'layerprobe', 'models', version);
}

function expectedOnnxSha(name: ShippedModelName): string | null {
  const card = JSON.parse(readFileSync(path.join(packageRoot(), 'models', name, 'card.json'), 'utf8')) as { files?: Record<string, { sha256?: string }> };
  return card.files?.['model.onnx']?.sha256 ?? null;
}

/**
 * Absolute path of a shipped model: its TF.js model.json (default), or its ONNX file (derived and
 * cached on first use; a few seconds).
 */
export async function shippedModel(name: string, format: ShippedModelFormat = 'tfjs'): Promise<string> {
  if (!isShippedModel(name)) throw unknownName('model', name, SHIPPED_MODELS);
  const dir = path.join(packageRoot(), 'models', name);
  const json = path.join(dir, 'model.json');
  if (format === 'tfjs') return json;
  const inPackage = path.join(dir, 'model.onnx');
  if (existsSync(inPackage)) return inPackage;
  const cached = path.join(shippedCacheDir(), `${name}.onnx`);
  const expected = expectedOnnxSha(name);
  if (existsSync(cached) && (expected === null || (await sha256File(cached)) === expected)) return cached;
  await mkdir(path.dirname(cached), { recursive: true });
  await exportOnnx({ model: json, out: cached, force: true, check: false });
  const got = await sha256File(cached);
  if (expected !== null && got !== expected) {
    await rm(cached, { force: true });
    throw new RuntimeFailure(`the ONNX file derived from shipped model ${name} has sha256 ${got}, not the ${expected} its card records`, 'this is a bug in the exporter; please report it');
  }
  return cached;
}

/** The folder of a shipped dataset (IDX files; `fashion-mnist` also resolves by registry name). */
export function shippedDataset(name: string = 'fashion-mnist'): string {
  if (!(SHIPPED_DATASETS as readonly string[]).includes(name)) throw unknownName('dataset', name, SHIPPED_DATASETS);
  return path.join(packageRoot(), 'datasets', name);
}

/** Absolute path of a shipped probe spec (its model paths are relative to it, so it runs from anywhere). */
export function shippedSpec(name: string = 'fmnist-zoo'): string {
  if (!(SHIPPED_SPECS as readonly string[]).includes(name)) throw unknownName('spec', name, SHIPPED_SPECS);
  return path.join(packageRoot(), 'probes', `${name}.yaml`);
}

/**
 * A model argument as the CLI takes it: an existing path is kept; otherwise a shipped model's name
 * (`fmnist-mlp`, or `fmnist-mlp.onnx` for its ONNX twin) resolves to the shipped file.
 */
export async function resolveModelArg(arg: string): Promise<string> {
  if (existsSync(arg)) return arg;
  const m = /^(fmnist-(?:mlp|cnn|vit))(\.onnx)?$/.exec(arg);
  if (!m) return arg;
  return shippedModel(m[1]!, m[2] ? 'onnx' : 'tfjs');
}
