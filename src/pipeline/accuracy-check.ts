/**
 * The accuracy check: a model that scores far below what it is known to score on the same data was
 * most likely fed the wrong input (another normalisation, layout or scale) — and then every layer
 * metric describes the wrong input too. The known value is, in order: the accuracy the model's
 * own description states for this dataset (a layerprobe model card beside the file; an ONNX
 * metadata entry `accuracy`), or the best accuracy layerprobe measured before for the same model
 * file on the same data (kept by content hash in the user cache, accuracy-history.json).
 *
 * "Far below" allows for sampling: the gap must exceed 2 points and 3 standard errors of the
 * difference (binomial, on the n images each value was measured on), so a small --per-class run
 * does not cry wolf.
 */
import { readFile, writeFile, rename, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { Dataset } from '../data/types.js';
import type { ModelReport } from '../report/schema.js';

/** A value the model is known to reach on this data, and where it comes from. */
export interface KnownAccuracy {
  value: number;
  /** Images it was measured on, when known (a stated value may not say). */
  n?: number;
  /** For the message: `its model card (…/card.json)`, `an earlier audit (2026-…, input {…})`. */
  source: string;
}

/** Smallest gap that warns, whatever n. */
export const ACCURACY_GAP_MIN = 0.02;
/** Standard errors of the difference a gap must exceed. */
export const ACCURACY_GAP_SE = 3;

export interface AccuracyCheckOptions {
  /** The history file; null: neither read nor written. Default: $XDG_CACHE_HOME/layerprobe/accuracy-history.json (off with LAYERPROBE_NO_HISTORY=1). */
  history?: string | null;
}

export function defaultHistoryFile(env: Record<string, string | undefined> = process.env): string | null {
  if (env.LAYERPROBE_NO_HISTORY === '1') return null;
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : path.join(env.HOME ?? homedir(), '.cache');
  return path.join(base, 'layerprobe', 'accuracy-history.json');
}

/** True when `measured` on n images is far enough below `known` to be a likely input mistake. */
export function farBelow(measured: number, n: number, known: KnownAccuracy): boolean {
  const v = (p: number, m: number | undefined) => (m && m > 0 ? (p * (1 - p)) / m : 0);
  const se = Math.sqrt(v(measured, n) + v(known.value, known.n));
  const gap = known.value - measured;
  return gap > ACCURACY_GAP_MIN && gap > ACCURACY_GAP_SE * se;
}

function datasetSplit(dataset: Dataset): string {
  const s = dataset.source.detail?.split;
  return typeof s === 'string' ? s : 'test';
}

/** A layerprobe model card beside the model file, when it describes this dataset's test split. */
async function fromCard(modelPath: string, dataset: Dataset): Promise<KnownAccuracy | null> {
  const file = path.join(path.dirname(modelPath), 'card.json');
  if (!existsSync(file)) return null;
  try {
    const card = JSON.parse(await readFile(file, 'utf8')) as { format?: string; dataset?: { name?: string; test?: { count?: number } }; metrics?: { testAccuracy?: number } };
    const acc = card.metrics?.testAccuracy;
    if (card.format !== 'layerprobe-model-card' || typeof acc !== 'number' || card.dataset?.name !== dataset.name || datasetSplit(dataset) !== 'test') return null;
    return { value: acc, ...(card.dataset.test?.count ? { n: card.dataset.test.count } : {}), source: `its model card (${file})` };
  } catch {
    return null;
  }
}

/**
 * An ONNX file's own statement: a metadata entry `accuracy` (or `test_accuracy`,
 * `layerprobe.accuracy`), a fraction or a percentage, for the dataset named by a `dataset` entry
 * when there is one.
 */
async function fromOnnxMetadata(modelPath: string, dataset: Dataset): Promise<KnownAccuracy | null> {
  if (!modelPath.toLowerCase().endsWith('.onnx')) return null;
  try {
    const model = onnxProto.onnx.ModelProto.decode(await readFile(modelPath));
    const props = new Map((model.metadataProps ?? []).map((p) => [String(p.key).toLowerCase(), String(p.value ?? '')]));
    const raw = props.get('accuracy') ?? props.get('test_accuracy') ?? props.get('layerprobe.accuracy');
    if (raw === undefined) return null;
    const named = props.get('dataset');
    if (named !== undefined && named.toLowerCase().replace(/:test$/, '') !== dataset.name.toLowerCase()) return null;
    let value = Number(raw.replace(/%$/, ''));
    if (!Number.isFinite(value) || value < 0) return null;
    if (value > 1 && value <= 100) value /= 100;
    if (value > 1) return null;
    return { value, source: `its ONNX metadata (accuracy ${raw}${named ? ` on ${named}` : ''})` };
  } catch {
    return null;
  }
}

interface HistoryEntry {
  accuracy: number;
  n: number;
  preprocess: Record<string, unknown>;
  at: string;
  model: string;
}

type History = Record<string, HistoryEntry>;

/** Model file and dataset content, so a renamed or moved file keeps its history. */
function historyKey(model: ModelReport, dataset: Dataset): string | null {
  const data = dataset.source.files.map((f) => f.sha256).join('+');
  return model.sha256 && data ? `${model.sha256}|${data}|${datasetSplit(dataset)}` : null;
}

async function readHistory(file: string): Promise<History> {
  try {
    const h = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return h && typeof h === 'object' && !Array.isArray(h) ? (h as History) : {};
  } catch {
    return {};
  }
}

function describeInput(p: Record<string, unknown>): string {
  const keys = ['scale', 'mean', 'std', 'layout', 'size', 'channels'].filter((k) => p[k] !== undefined);
  return keys.map((k) => `${k}=${Array.isArray(p[k]) ? (p[k] as unknown[]).join('/') : String(p[k])}`).join(',');
}

/**
 * One warning per model whose accuracy is far below a known value; then the history keeps each
 * model's best accuracy on this data. Never fails the audit: files it cannot read are skipped,
 * a history it cannot write is left as it was.
 */
export async function checkAccuracies(models: readonly ModelReport[], dataset: Dataset, opts: AccuracyCheckOptions = {}): Promise<string[]> {
  const file = opts.history === undefined ? defaultHistoryFile() : opts.history;
  const history = file ? await readHistory(file) : {};
  const warnings: string[] = [];
  let changed = false;
  for (const m of models) {
    const acc = m.accuracy?.value;
    const n = Number(m.accuracy?.detail?.n ?? 0);
    if (typeof acc !== 'number' || !(n > 0)) continue;
    const key = historyKey(m, dataset);
    const before = key ? history[key] : undefined;
    const recorded: KnownAccuracy | null = before ? { value: before.accuracy, n: before.n, source: `an earlier audit of the same file on the same data (${before.at.slice(0, 10)}, input ${describeInput(before.preprocess) || 'default'})` } : null;
    const known = [await fromCard(m.path, dataset), await fromOnnxMetadata(m.path, dataset), recorded].filter((k): k is KnownAccuracy => k !== null);
    const worst = known.find((k) => farBelow(acc, n, k));
    if (worst) {
      warnings.push(
        `${m.name}: accuracy ${(100 * acc).toFixed(1)}% on ${n} images is far below the ${(100 * worst.value).toFixed(1)}% of ${worst.source}; ` +
          `the input is likely prepared differently from what the model expects (now ${describeInput(m.preprocess) || 'default'}); ` +
          `set it per model with --input ${m.name}:mean=…,std=… or the spec's models[].input (docs/probe-spec.md#modelsinput)`,
      );
    }
    if (key && (!before || acc > before.accuracy || (acc === before.accuracy && n > before.n))) {
      history[key] = { accuracy: acc, n, preprocess: m.preprocess, at: new Date().toISOString(), model: m.path };
      changed = true;
    }
  }
  if (file && changed) {
    try {
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.tmp-${process.pid}`;
      await writeFile(tmp, JSON.stringify(history, null, 2) + '\n');
      await rename(tmp, file);
    } catch {
      // The history is a convenience; a read-only cache must not cost the audit.
    }
  }
  return warnings;
}
