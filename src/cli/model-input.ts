/**
 * Per-model input settings on the command line: `--input MODEL:key=value[,key=value…]`, repeated
 * once per model that needs its own, e.g.
 *
 *   layerprobe compare -m vit.onnx -m resnet.onnx -d images/ \
 *     --input vit.onnx:mean=0.5,std=0.5 --input resnet.onnx:mean=0.485,0.456,0.406,std=0.229,0.224,0.225
 *
 * A value list continues until the next `key=` (so `mean=0.485,0.456,0.406` is one key). MODEL is
 * the model as given (path or shipped name), its file name, or its display name. The keys are the
 * probe spec's `models[].input` keys (docs/probe-spec.md#modelsinput) and win over the shared
 * --scale/--mean/--std/… flags for that model only.
 */
import path from 'node:path';
import type { PreprocessSpec } from '../data/types.js';
import { parsePreprocess } from '../data/preprocess.js';
import { UsageError } from '../errors.js';
import { modelDisplayName } from '../pipeline/prepare.js';
import type { AuditModel } from '../pipeline/audit.js';

export interface ModelInputSetting {
  /** The model as the user named it. */
  model: string;
  /** Its path when the name is a shipped model's (`fmnist-cnn.onnx`), for matching. */
  resolved?: string;
  preprocess: Partial<PreprocessSpec>;
}

const LIST_KEYS = new Set(['mean', 'std', 'size', 'reshape']);
const KEYS = ['scale', 'mean', 'std', 'layout', 'size', 'channels', 'reshape'];

/** Parses one `MODEL:key=value,…`; usage errors name the --input and the key. */
export function parseModelInput(text: string): ModelInputSetting {
  const eq = text.indexOf('=');
  const colon = eq < 0 ? -1 : text.lastIndexOf(':', eq);
  if (colon <= 0) throw new UsageError(`--input \`${text}\`: write MODEL:key=value[,key=value…]`, 'e.g. --input vit.onnx:mean=0.5,std=0.5');
  const model = text.slice(0, colon);
  const raw: Record<string, string[]> = {};
  let key: string | null = null;
  for (const token of text.slice(colon + 1).split(',').map((s) => s.trim())) {
    const m = /^([a-z]+)=(.*)$/.exec(token);
    if (m) {
      key = m[1]!;
      if (!KEYS.includes(key)) throw new UsageError(`--input ${model}: unknown key \`${key}\``, `keys: ${KEYS.join(', ')}`);
      if (raw[key]) throw new UsageError(`--input ${model}: \`${key}\` given twice`);
      raw[key] = m[2] === '' ? [] : [m[2]!];
    } else if (key !== null && LIST_KEYS.has(key) && token !== '') {
      raw[key]!.push(token);
    } else {
      throw new UsageError(`--input ${model}: \`${token}\` is not key=value${key && !LIST_KEYS.has(key) ? ` (\`${key}\` takes one value)` : ''}`, 'e.g. --input vit.onnx:mean=0.485,0.456,0.406,std=0.229,0.224,0.225');
    }
  }
  if (key === null) throw new UsageError(`--input ${model}: no settings given`, 'e.g. --input vit.onnx:mean=0.5,std=0.5');
  const num = (k: string, v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`--input ${model}: \`${k}\` expects numbers (got \`${v}\`)`);
    return x;
  };
  const value: Record<string, unknown> = {};
  for (const [k, vs] of Object.entries(raw)) {
    if (k === 'layout') value[k] = vs[0]?.toUpperCase();
    else if (k === 'size') value[k] = vs.flatMap((v) => v.split(/[x×]/)).map((v) => num(k, v));
    else if (LIST_KEYS.has(k)) value[k] = vs.map((v) => num(k, v));
    else value[k] = num(k, vs[0] ?? '');
  }
  return { model, preprocess: parsePreprocess(value, (k) => `--input ${model}: \`${k.split('.')[0]}\``) };
}

/** The names a model answers to in --input: as given, its file, its folder-or-stem name, its spec name. */
function namesOf(m: AuditModel, given: string | undefined): Set<string> {
  const names = new Set([m.path, path.resolve(m.path), path.basename(m.path), modelDisplayName(m.path)]);
  if (given) names.add(given);
  if (m.name) names.add(m.name);
  return names;
}

/**
 * Lays each setting over the one model it names (after the shared flags, which it overrides key by
 * key). `given` holds the model arguments as typed, before shipped names were resolved, in the
 * order of `models` (when known). Every setting must name exactly one model.
 */
export function applyModelInputs(models: readonly AuditModel[], settings: readonly ModelInputSetting[], given: readonly (string | undefined)[] = []): AuditModel[] {
  const out = models.map((m) => ({ ...m, preprocess: { ...m.preprocess } }));
  const names = models.map((m, i) => namesOf(m, given[i]));
  const taken = new Set<number>();
  for (const s of settings) {
    const exact = models.map((m, i) => i).filter((i) => path.resolve(models[i]!.path) === path.resolve(s.resolved ?? s.model) || given[i] === s.model);
    const hits = exact.length ? exact : models.map((_m, i) => i).filter((i) => names[i]!.has(s.model));
    const list = models.map((m, i) => given[i] ?? m.name ?? modelDisplayName(m.path)).join(', ');
    if (hits.length === 0) throw new UsageError(`--input ${s.model}: no model of this run is called \`${s.model}\``, `the models: ${list}`);
    if (hits.length > 1) throw new UsageError(`--input ${s.model}: names ${hits.length} models of this run`, `name one by its path; the models: ${list}`);
    const i = hits[0]!;
    if (taken.has(i)) throw new UsageError(`--input: model \`${s.model}\` has two --input settings`, 'give all its keys in one --input');
    taken.add(i);
    out[i]!.preprocess = { ...out[i]!.preprocess, ...s.preprocess };
  }
  return out;
}
