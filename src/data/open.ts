import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { didYouMean, editDistance } from '../util/suggest.js';
import { openCsvDataset } from './csv.js';
import { openIdxDataset } from './idx.js';
import { openImageFolder } from './image-folder.js';
import { openNpyDataset } from './npy.js';
import { openRegistryDataset, registryNames, type Split } from './registry.js';
import type { Dataset } from './types.js';

export interface OpenDatasetOptions {
  split?: Split;
  /** Labels file for an IDX images file or an .npy images file. */
  labels?: string;
  csvLayout?: 'HWC' | 'CHW';
  shape?: [number, number, number];
  size?: [number, number];
  channels?: 1 | 3;
}

export function listKnownDatasets(): string[] {
  return registryNames();
}

const IMAGES_IDX = /images([-.])idx3-ubyte(\.gz)?$/;
const LABELS_IDX = /labels[-.]idx1-ubyte(\.gz)?$/;

/**
 * Resolves what the user typed as --dataset: a known name (`mnist`, `fashion-mnist:train`),
 * an IDX images file, a folder of IDX pairs or of class subfolders, a .csv or an .npy file.
 * Known names win over same-named entries in the working directory; write `./mnist` for those.
 */
export async function openDataset(ref: string, opts: OpenDatasetOptions = {}): Promise<Dataset> {
  const named = parseRegistryRef(ref);
  if (named) {
    if (named.split && opts.split && named.split !== opts.split) {
      throw new UsageError(`dataset \`${ref}\` names the ${named.split} split but --split ${opts.split} was given`);
    }
    return openRegistryDataset(named.name, named.split ?? opts.split ?? 'test');
  }

  const info = await stat(ref).catch(() => null);
  if (!info) throw notFound(ref);
  if (info.isDirectory()) {
    const pair = await findIdxPair(ref, opts.split);
    if (pair) return openIdxDataset({ ...pair, name: ref });
    return openImageFolder(ref, { size: opts.size, channels: opts.channels });
  }

  const name = basename(ref);
  const lower = name.toLowerCase();
  if (IMAGES_IDX.test(name)) {
    const labels = opts.labels ?? join(dirname(ref), name.replace(IMAGES_IDX, 'labels$1idx1-ubyte$2'));
    if (!existsSync(labels)) {
      throw new UsageError(`labels for ${ref} not found: no ${labels}`, 'pass the labels file with --labels');
    }
    return openIdxDataset({ images: ref, labels, name: ref });
  }
  if (LABELS_IDX.test(name)) {
    throw new UsageError(`${ref} is a labels file`, `pass the images file (${name.replace(/labels([-.])idx1/, 'images$1idx3')})`);
  }
  if (lower.endsWith('.csv')) {
    return openCsvDataset(ref, { layout: opts.csvLayout ?? 'HWC', shape: opts.shape });
  }
  if (lower.endsWith('.npy')) {
    const labels = opts.labels ?? npyLabels(ref);
    return openNpyDataset(ref, labels);
  }
  throw new UsageError(
    `don't know how to read dataset file ${ref}`,
    'expected an *-images-idx3-ubyte[.gz] file, a .csv, an .npy, a folder, or a known dataset name',
  );
}

function parseRegistryRef(ref: string): { name: string; split?: Split } | null {
  const m = /^([a-z0-9-]+)(?::(.*))?$/.exec(ref);
  if (!m || !registryNames().includes(m[1]!)) return null;
  const split = m[2];
  if (split === undefined) return { name: m[1]! };
  if (split !== 'train' && split !== 'test') {
    throw new UsageError(`unknown split \`${split}\` in \`${ref}\` (splits: train, test)`);
  }
  return { name: m[1]!, split };
}

function notFound(ref: string): UsageError {
  const known = registryNames();
  // didYouMean always proposes something; only offer names that are plausibly what was meant.
  const close = known.filter((k) => {
    const a = ref.toLowerCase();
    return a.includes(k) || k.includes(a) || editDistance(a, k) <= Math.max(2, Math.floor(k.length / 3));
  });
  const hint = close.length ? didYouMean(ref, close) : undefined;
  return new UsageError(
    `dataset \`${ref}\` not found: no such file, and not a known dataset name (known: ${known.join(', ')})`,
    hint,
  );
}

function npyLabels(images: string): string {
  const dir = dirname(images);
  const stem = basename(images).replace(/\.npy$/i, '');
  const candidates = [join(dir, `${stem}-labels.npy`), join(dir, 'labels.npy')];
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new UsageError(`labels for ${images} not found (looked for ${candidates.join(', ')})`, 'pass the labels .npy with --labels');
  }
  return found;
}

/**
 * An images/labels IDX pair inside `dir`: the train pair when split=train, otherwise t10k/test
 * first; with no split given and only one pair present, that one. Raw files beat .gz copies.
 */
async function findIdxPair(dir: string, split: Split | undefined): Promise<{ images: string; labels: string } | null> {
  const names = new Set(await readdir(dir));
  const pairs: { prefix: string; images: string; labels: string }[] = [];
  for (const images of [...names].sort((a, b) => a.length - b.length || a.localeCompare(b, 'en'))) {
    const m = IMAGES_IDX.exec(images);
    if (!m) continue;
    const labels = images.replace(IMAGES_IDX, 'labels$1idx1-ubyte$2');
    if (!names.has(labels)) continue;
    const prefix = images.slice(0, m.index).toLowerCase();
    if (!pairs.some((p) => p.prefix === prefix)) pairs.push({ prefix, images: join(dir, images), labels: join(dir, labels) });
  }
  if (pairs.length === 0) return null;
  const isTrain = (p: { prefix: string }) => p.prefix.includes('train');
  const isTest = (p: { prefix: string }) => p.prefix.includes('t10k') || p.prefix.includes('test');
  const pick = split === 'train' ? pairs.find(isTrain) : pairs.find(isTest) ?? (split ? undefined : pairs.length === 1 ? pairs[0] : undefined);
  if (!pick) {
    throw new UsageError(
      `folder ${dir} has IDX files but no ${split ?? 'test'} pair (found: ${pairs.map((p) => basename(p.images)).join(', ')})`,
      split ? undefined : 'choose one with --split train or name the images file',
    );
  }
  return { images: pick.images, labels: pick.labels };
}
