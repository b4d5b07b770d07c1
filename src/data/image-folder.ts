import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { sha256File } from './hash.js';
import { checkIndices, emptyBatch, narrowLabels } from './memory.js';
import { LUMA } from './preprocess.js';
import type { Dataset, DatasetSourceInfo, RawBatch } from './types.js';

export interface ImageFolderOptions {
  /** [H, W] of every item; default: the first image's size. */
  size?: [number, number];
  /** Force 1 (luma) or 3 channels; default: 1 if the first image is greyscale, else 3. */
  channels?: 1 | 3;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);

/**
 * Above this many images the source lists no per-file sha256: hashing a 1M-image folder would
 * cost as much as the probe. A digest of the sorted (path, size) listing stands in for it.
 */
export const MAX_HASHED_IMAGES = 2000;

const byName = (a: string, b: string): number => a.localeCompare(b, 'en');

function isImage(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return !name.startsWith('.') && dot > 0 && IMAGE_EXTENSIONS.has(name.slice(dot).toLowerCase());
}

/** A directory entry as a folder or a file, following symbolic links (a dangling one is neither). */
async function kindOf(dir: string, e: Dirent): Promise<'dir' | 'file' | null> {
  if (e.isDirectory()) return 'dir';
  if (e.isFile()) return 'file';
  if (!e.isSymbolicLink()) return null;
  try {
    const st = await stat(join(dir, e.name));
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : null;
  } catch {
    return null;
  }
}

/**
 * libvips reports one line per decoder layer, often the same line twice, and its error buffer is
 * shared: after an earlier failure it can still hold lines about another file (the fuzzer saw
 * "…/0.png: …/1.png: unable to open for read"). One line, each reason once, none about another file.
 */
function decodeReason(e: unknown, file: string): string {
  const lines = errorMessage(e).split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const own = lines.filter((l) => !/\.(?:png|jpe?g|webp)\b/i.test(l) || l.includes(file));
  const kept = own.filter((l) => !/^system error:/.test(l));
  return [...new Set(kept.length ? kept : lines)].join('; ');
}

/** `root/<class>/<image>`: class order is the sorted folder names, labels come from the listing. */
export async function openImageFolder(root: string, opts: ImageFolderOptions = {}): Promise<Dataset> {
  const entries = await readdir(root, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`image folder ${root} cannot be listed: ${e.code ?? errorMessage(e)}`);
  });
  const classDirs = (await Promise.all(entries.filter((e) => !e.name.startsWith('.')).map(async (e) => ((await kindOf(root, e)) === 'dir' ? e.name : null))))
    .filter((n): n is string => n !== null)
    .sort(byName);

  const classes: string[] = [];
  const files: string[] = [];
  const labels: number[] = [];
  const emptyDirs: string[] = [];
  for (const cls of classDirs) {
    const listed = (await readdir(join(root, cls), { withFileTypes: true })).filter((e) => isImage(e.name));
    const names = (await Promise.all(listed.map(async (e) => ((await kindOf(join(root, cls), e)) === 'file' ? e.name : null))))
      .filter((n): n is string => n !== null)
      .sort(byName);
    // A folder without images is not a class the data can say anything about; keeping it
    // would add a class with zero samples to every per-class statistic.
    if (names.length === 0) {
      emptyDirs.push(cls);
      continue;
    }
    const label = classes.length;
    classes.push(cls);
    for (const f of names) {
      files.push(join(root, cls, f));
      labels.push(label);
    }
  }
  if (files.length === 0) {
    throw new UsageError(
      `image folder ${root} has no images (.png, .jpg, .jpeg, .webp) in class subfolders`,
      'lay the images out as <root>/<class>/<image>',
    );
  }
  if (classes.length < 2) {
    throw new UsageError(`image folder ${root} has only one class \`${classes[0]}\`; need at least two`,
      'lay the images out as <root>/<class>/<image>, one subfolder per class');
  }

  const first = await inspect(files[0]!);
  const size = opts.size ?? [first.height, first.width];
  if (!size.every((d) => Number.isInteger(d) && d > 0)) {
    throw new UsageError(`image size must be two positive integers, got [${size.join(', ')}]`);
  }
  const channels = opts.channels ?? (first.grey ? 1 : 3);
  const itemShape: [number, number, number] = [size[0], size[1], channels];
  const labelArray = narrowLabels(labels, root);
  const source = await describeSource(root, files, {
    classes: classes.length,
    images: files.length,
    height: size[0],
    width: size[1],
    channels,
    sizeFrom: opts.size ? 'option' : 'first image',
    channelsFrom: opts.channels ? 'option' : 'first image',
    ...(emptyDirs.length ? { emptyFoldersIgnored: emptyDirs.join(', ') } : {}),
  });

  return {
    name: root,
    classes,
    labels: labelArray,
    itemShape,
    source,
    // Decoded to 8 bits per channel.
    maxValue: 255,
    async read(indices: ArrayLike<number>): Promise<RawBatch> {
      checkIndices(indices, files.length, root);
      const batch = emptyBatch(indices.length, itemShape);
      const itemSize = size[0] * size[1] * channels;
      // Decode a few at a time: sharp works off the main thread, so this overlaps file IO and
      // decoding without holding more than a handful of decoded images beyond the batch itself.
      const parallel = 4;
      for (let start = 0; start < indices.length; start += parallel) {
        const stop = Math.min(indices.length, start + parallel);
        const jobs: Promise<void>[] = [];
        for (let i = start; i < stop; i++) {
          const k = indices[i]!;
          batch.indices[i] = k;
          batch.labels[i] = labelArray[k]!;
          jobs.push(decodeInto(files[k]!, size, channels, batch.x.subarray(i * itemSize, (i + 1) * itemSize)));
        }
        await Promise.all(jobs);
      }
      return batch;
    },
  };
}

async function inspect(file: string): Promise<{ height: number; width: number; grey: boolean }> {
  try {
    const m = await sharp(file).metadata();
    if (!m.width || !m.height) throw new Error('no dimensions in header');
    const colour = m.channels - (m.hasAlpha ? 1 : 0);
    return { height: m.height, width: m.width, grey: colour === 1 };
  } catch (e) {
    throw new RuntimeFailure(`cannot decode image ${file}: ${decodeReason(e, file)}`);
  }
}

/**
 * Decodes to 8-bit, drops alpha, resizes with libvips' linear kernel (antialiased when
 * shrinking; stretched, since a dataset has one item shape) and converts channels with the
 * same luma weights as preprocess().
 */
async function decodeInto(file: string, size: [number, number], channels: 1 | 3, out: Float32Array): Promise<void> {
  let data: Buffer;
  let info: OutputInfo;
  const decode = (resize: boolean, toSrgb: boolean): Promise<{ data: Buffer; info: OutputInfo }> => {
    let img = sharp(file).removeAlpha();
    if (toSrgb) img = img.toColourspace('srgb');
    if (resize) img = img.resize(size[1], size[0], { fit: 'fill', kernel: 'linear' });
    return img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  };
  try {
    // The header says whether to resize or convert, so each image is decoded once.
    const m = await sharp(file).metadata();
    const resize = m.width !== size[1] || m.height !== size[0];
    // CMYK and other exotic spaces come out with 4+ channels; ask libvips for sRGB instead.
    const colour = (m.channels ?? 0) - (m.hasAlpha ? 1 : 0);
    const toSrgb = colour !== 1 && colour !== 3;
    ({ data, info } = await decode(resize, toSrgb));
  } catch (e) {
    // sharp's own words ("Warning treated as error due to failOn setting") do not say what is wrong.
    throw new RuntimeFailure(`cannot decode image ${file}: ${decodeReason(e, file)}`, 'the file is corrupt, truncated or not an image; replace or remove it');
  }
  const pixels = info.width * info.height;
  if (info.width !== size[1] || info.height !== size[0] || (info.channels !== 1 && info.channels !== 3)) {
    throw new RuntimeFailure(`cannot decode image ${file}: got ${info.width}x${info.height}x${info.channels}`);
  }
  if (info.channels === channels) {
    for (let i = 0; i < out.length; i++) out[i] = data[i]!;
  } else if (channels === 3) {
    for (let p = 0; p < pixels; p++) out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = data[p]!;
  } else {
    for (let p = 0; p < pixels; p++) {
      out[p] = LUMA[0] * data[3 * p]! + LUMA[1] * data[3 * p + 1]! + LUMA[2] * data[3 * p + 2]!;
    }
  }
}

async function describeSource(
  root: string,
  files: string[],
  detail: Record<string, string | number | boolean>,
): Promise<DatasetSourceInfo> {
  const sizes = await mapLimited(files, 32, async (f) => (await stat(f)).size);
  const listing = createHash('sha256');
  files.forEach((f, i) => listing.update(`${f.slice(root.length)}\t${sizes[i]}\n`));
  const hashed = files.length <= MAX_HASHED_IMAGES;
  const hashes = hashed ? await mapLimited(files, 16, sha256File) : [];
  return {
    kind: 'image-folder',
    files: hashed ? files.map((path, i) => ({ path, sha256: hashes[i]!, bytes: sizes[i]! })) : [],
    detail: {
      ...detail,
      root,
      totalBytes: sizes.reduce((a, b) => a + b, 0),
      listingSha256: listing.digest('hex'),
      filesHashed: hashed,
    },
  };
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
