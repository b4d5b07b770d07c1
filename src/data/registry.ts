import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { open, rename, stat, unlink, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { mkdirSteps } from '../util/mkdir-steps.js';
import { hashFile } from './hash.js';
import { idxDeclaredSize, isGzip, openIdxDataset } from './idx.js';
import { gunzipCapped } from './gzip.js';
import type { Dataset } from './types.js';

export type Split = 'train' | 'test';
export type FileRole = 'images' | 'labels';
export type Location = 'env' | 'package' | 'system' | 'cache';

export interface RegistryFile {
  /** Name of the gzipped file as published. */
  file: string;
  /** Checksums and size of the file exactly as downloaded from the official source. */
  sha256: string;
  md5: string;
  bytes: number;
  /**
   * sha256 of the decompressed IDX bytes, where known. Debian's package ships the same deflate
   * streams with the gzip header normalised (no file name, fixed mtime), so its .gz files have
   * other digests than the download while holding identical data.
   */
  contentSha256?: string;
}

export interface KnownDataset {
  name: string;
  description: string;
  homepage: string;
  license: string;
  classes: readonly string[];
  itemShape: readonly [number, number, number];
  splits: Record<Split, { count: number; images: RegistryFile; labels: RegistryFile }>;
  /** Download bases, tried in order; file names are appended. */
  urls: readonly string[];
  /** Where a distribution package installs it. */
  systemDir: string;
  aptPackage?: string;
}

/*
 * Checksums. Fashion-MNIST: the four official sha256 (as listed by tensorflow/datasets
 * url_checksums) were confirmed by rebuilding the official .gz files from Debian's copies
 * (restoring the gzip header's file name and mtime) and matching both the official md5 and
 * the sha256. MNIST t10k: computed from the canonical files. MNIST train: sha256 as listed by
 * tensorflow/datasets and several independent projects, with the md5 published by torchvision.
 */
const KNOWN: Record<string, KnownDataset> = {
  'fashion-mnist': {
    name: 'fashion-mnist',
    description: 'Zalando Fashion-MNIST: 28x28 greyscale images of 10 kinds of clothing (60k train, 10k test)',
    homepage: 'https://github.com/zalandoresearch/fashion-mnist',
    license: 'MIT',
    classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    itemShape: [28, 28, 1],
    splits: {
      train: {
        count: 60000,
        images: {
          file: 'train-images-idx3-ubyte.gz',
          sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
          md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
          bytes: 26421880,
          contentSha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
        },
        labels: {
          file: 'train-labels-idx1-ubyte.gz',
          sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
          md5: '25c81989df183df01b3e8a0aad5dffbe',
          bytes: 29515,
          contentSha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
        },
      },
      test: {
        count: 10000,
        images: {
          file: 't10k-images-idx3-ubyte.gz',
          sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
          md5: 'bef4ecab320f06d8554ea6380940ec79',
          bytes: 4422102,
          contentSha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
        },
        labels: {
          file: 't10k-labels-idx1-ubyte.gz',
          sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
          md5: 'bb300cfdad3c16e7a12a480ee83cd310',
          bytes: 5148,
          contentSha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
        },
      },
    },
    urls: ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'],
    systemDir: '/usr/share/datasets/fashion-mnist',
    aptPackage: 'dataset-fashion-mnist',
  },
  mnist: {
    name: 'mnist',
    description: 'MNIST handwritten digits: 28x28 greyscale (60k train, 10k test)',
    homepage: 'http://yann.lecun.com/exdb/mnist/',
    license: 'CC BY-SA 3.0',
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    itemShape: [28, 28, 1],
    splits: {
      train: {
        count: 60000,
        images: {
          file: 'train-images-idx3-ubyte.gz',
          sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
          md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
          bytes: 9912422,
        },
        labels: {
          file: 'train-labels-idx1-ubyte.gz',
          sha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
          md5: 'd53e105ee54ea40749a09fcbcd1e9432',
          bytes: 28881,
        },
      },
      test: {
        count: 10000,
        images: {
          file: 't10k-images-idx3-ubyte.gz',
          sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
          md5: '9fb629c4189551a2d022fa330f9573f3',
          bytes: 1648877,
          contentSha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
        },
        labels: {
          file: 't10k-labels-idx1-ubyte.gz',
          sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
          md5: 'ec29112dd5afa0611ce80d1b7f02629c',
          bytes: 4542,
          contentSha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
        },
      },
    },
    urls: ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'https://storage.googleapis.com/cvdf-datasets/mnist/'],
    systemDir: '/usr/share/datasets/mnist',
  },
};

export const SPLITS: readonly Split[] = ['train', 'test'];

export function registryNames(): string[] {
  return Object.keys(KNOWN);
}

export function knownDataset(name: string): KnownDataset {
  const d = KNOWN[name];
  if (!d) {
    const near = didYouMean(name, registryNames());
    throw new UsageError(`unknown dataset \`${name}\` (known: ${registryNames().join(', ')})`, near || undefined);
  }
  return d;
}

/** Walks up from this module to the package.json named layerprobe: works from src/ and dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'layerprobe') return dir;
      } catch {
        // An unreadable package.json is not ours; keep walking.
      }
    }
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export type Env = Record<string, string | undefined>;

export function cacheRoot(env: Env = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(env.HOME ?? homedir(), '.cache');
  return join(base, 'layerprobe', 'datasets');
}

export interface SearchDir {
  location: Location;
  dir: string;
}

export interface LocateOptions {
  env?: Env;
  /** Replaces the standard search path (tests, embedding). */
  dirs?: SearchDir[];
}

/** Search order: $LAYERPROBE_DATA, the package's datasets/, the distribution's copy, the user cache. */
export function searchDirs(name: string, opts: LocateOptions = {}): SearchDir[] {
  if (opts.dirs) return opts.dirs;
  const d = knownDataset(name);
  const env = opts.env ?? process.env;
  const dirs: SearchDir[] = [];
  if (env.LAYERPROBE_DATA) dirs.push({ location: 'env', dir: join(env.LAYERPROBE_DATA, name) });
  dirs.push({ location: 'package', dir: join(packageRoot(), 'datasets', name) });
  dirs.push({ location: 'system', dir: d.systemDir });
  dirs.push({ location: 'cache', dir: join(cacheRoot(env), name) });
  return dirs;
}

export interface FoundFile {
  path: string;
  location: Location;
}

/** First copy of `file` on the search path; an already-gunzipped copy counts too. */
export function locateFile(name: string, file: string, opts: LocateOptions = {}): FoundFile | null {
  for (const { dir, location } of searchDirs(name, opts)) {
    for (const candidate of [file, file.replace(/\.gz$/, '')]) {
      const path = join(dir, candidate);
      if (existsSync(path)) return { path, location };
    }
  }
  return null;
}

export type Verification = 'official' | 'same-content' | 'mismatch' | 'unverifiable';

export interface FileStatus {
  role: FileRole;
  file: string;
  path: string | null;
  location: Location | null;
  bytes: number | null;
  expectedBytes: number;
  expectedSha256: string;
  /** Only with verify: whether the bytes (or the decompressed data) match the registry. */
  verification?: Verification;
}

export interface DatasetInfo {
  name: string;
  description: string;
  homepage: string;
  license: string;
  classes: readonly string[];
  itemShape: readonly [number, number, number];
  searched: SearchDir[];
  splits: Record<Split, { count: number; available: boolean; files: FileStatus[] }>;
}

/** Where each file of a known dataset is found (or not), optionally checking its checksum. */
export async function datasetInfo(name: string, opts: LocateOptions & { verify?: boolean } = {}): Promise<DatasetInfo> {
  const d = knownDataset(name);
  const splits = {} as DatasetInfo['splits'];
  for (const split of SPLITS) {
    const s = d.splits[split];
    const files: FileStatus[] = [];
    for (const role of ['images', 'labels'] as const) {
      const rf = s[role];
      const found = locateFile(name, rf.file, opts);
      const status: FileStatus = {
        role,
        file: rf.file,
        path: found?.path ?? null,
        location: found?.location ?? null,
        bytes: found ? (await stat(found.path)).size : null,
        expectedBytes: rf.bytes,
        expectedSha256: rf.sha256,
      };
      if (found && opts.verify) status.verification = await verifyFile(found.path, rf);
      files.push(status);
    }
    splits[split] = { count: s.count, available: files.every((f) => f.path !== null), files };
  }
  return {
    name,
    description: d.description,
    homepage: d.homepage,
    license: d.license,
    classes: d.classes,
    itemShape: d.itemShape,
    searched: searchDirs(name, opts),
    splits,
  };
}

export async function verifyFile(path: string, rf: RegistryFile): Promise<Verification> {
  if ((await hashFile(path)) === rf.sha256) return 'official';
  if (!rf.contentSha256) return 'unverifiable';
  const bytes = await readFile(path);
  let content: Uint8Array = bytes;
  if (isGzip(bytes)) {
    try {
      // Capped like any IDX read: a bomb under a registry name is a mismatch, found at once.
      content = await gunzipCapped(bytes, path, idxDeclaredSize);
    } catch {
      return 'mismatch';
    }
  }
  return createHash('sha256').update(content).digest('hex') === rf.contentSha256 ? 'same-content' : 'mismatch';
}

function installHint(d: KnownDataset): string {
  const apt = d.aptPackage ? ` or \`apt-get install ${d.aptPackage}\`` : '';
  return `run \`layerprobe datasets fetch ${d.name}\`${apt}, or put the files in $LAYERPROBE_DATA/${d.name}/`;
}

/** Opens a known dataset from the first location holding each of its files. */
export async function openRegistryDataset(name: string, split: Split = 'test', opts: LocateOptions = {}): Promise<Dataset> {
  const d = knownDataset(name);
  const s = d.splits[split];
  const images = locateFile(name, s.images.file, opts);
  const labels = locateFile(name, s.labels.file, opts);
  if (!images || !labels) {
    const missing = [images ? null : s.images.file, labels ? null : s.labels.file].filter((x) => x !== null);
    const searched = searchDirs(name, opts).map((x) => x.dir).join(', ');
    throw new UsageError(
      `dataset ${name} (${split} split) is not installed: missing ${missing.join(' and ')} (searched ${searched})`,
      installHint(d),
    );
  }
  const ds = await openIdxDataset({
    images: images.path,
    labels: labels.path,
    name,
    classes: d.classes,
    kind: name,
    detail: { split, location: images.location === labels.location ? images.location : `${images.location}+${labels.location}` },
  });
  // Recorded, not enforced: a user's own re-packed copy may differ and still be fine to use.
  ds.source.detail = { ...ds.source.detail, checksum: checksumStatus(ds, s.images, s.labels) };
  return ds;
}

/** Uses the digests openIdxDataset already computed, so opening costs no second read. */
function checksumStatus(ds: Dataset, images: RegistryFile, labels: RegistryFile): Verification {
  const [fi, fl] = ds.source.files;
  const detail = ds.source.detail ?? {};
  if (fi?.sha256 === images.sha256 && fl?.sha256 === labels.sha256) return 'official';
  if (!images.contentSha256 || !labels.contentSha256) return 'unverifiable';
  return detail.imagesContentSha256 === images.contentSha256 && detail.labelsContentSha256 === labels.contentSha256
    ? 'same-content'
    : 'mismatch';
}

export interface FetchProgress {
  file: string;
  url: string;
  received: number;
  total: number;
}

export interface FetchOptions {
  /** Default: both splits. */
  split?: Split;
  onProgress?: (p: FetchProgress) => void;
  /** Replaces the official download bases (mirrors, tests). */
  baseUrls?: readonly string[];
  /** Replaces the user cache as destination. */
  dir?: string;
  env?: Env;
  /** Per-request time limit; a stalled mirror then falls through to the next one. */
  timeoutMs?: number;
}

export interface FetchedFile {
  file: string;
  path: string;
  bytes: number;
  sha256: string;
  /** False when a verified copy was already in place. */
  downloaded: boolean;
  url?: string;
}

/**
 * Downloads a known dataset into the user cache. Each file goes to a temporary name and is
 * renamed into place only once its sha256 matches, so an interrupted or tampered download
 * never looks like a dataset.
 */
export async function fetchDataset(name: string, opts: FetchOptions = {}): Promise<FetchedFile[]> {
  const d = knownDataset(name);
  const dir = opts.dir ?? join(cacheRoot(opts.env ?? process.env), name);
  const splits = opts.split ? [opts.split] : SPLITS;
  const out: FetchedFile[] = [];
  for (const split of splits) {
    for (const role of ['images', 'labels'] as const) {
      out.push(await fetchFile(d, d.splits[split][role], dir, opts));
    }
  }
  return out;
}

async function fetchFile(d: KnownDataset, rf: RegistryFile, dir: string, opts: FetchOptions): Promise<FetchedFile> {
  // A verified copy already on the search path (the distribution's package, $LAYERPROBE_DATA, the
  // project's datasets/) is what `datasets list` calls here: nothing to download.
  if (!opts.dir) {
    const found = locateFile(d.name, rf.file, opts.env ? { env: opts.env } : {});
    if (found && found.location !== 'cache') {
      const v = await verifyFile(found.path, rf);
      if (v === 'official' || v === 'same-content') {
        // 'official' already proved the hash; only a gunzipped or re-packed copy needs its own.
        const sha256 = v === 'official' ? rf.sha256 : await hashFile(found.path);
        return { file: rf.file, path: found.path, bytes: (await stat(found.path)).size, sha256, downloaded: false };
      }
    }
  }
  await mkdirSteps(dir).catch((e: unknown) => {
    throw new RuntimeFailure(`cannot create ${dir}: ${errorMessage(e)}`);
  });
  try {
    return await downloadVerified(
      { file: rf.file, dest: join(dir, rf.file), sha256: rf.sha256, bytes: rf.bytes, urls: (opts.baseUrls ?? d.urls).map((b) => joinUrl(b, rf.file)) },
      opts,
    );
  } catch (e) {
    if (e instanceof RuntimeFailure && e.message.startsWith('could not download')) {
      throw new RuntimeFailure(
        `${d.name}: ${e.message}`,
        `check the network, or copy the official files into ${dir}/ (or $LAYERPROBE_DATA/${d.name}/)`,
      );
    }
    throw e;
  }
}

function joinUrl(base: string, file: string): string {
  return base.endsWith('/') ? base + file : `${base}/${file}`;
}

export interface VerifiedDownload {
  /** Name used in messages and progress events. */
  file: string;
  dest: string;
  sha256: string;
  /** Expected size, used as progress total when the server sends no Content-Length. */
  bytes: number;
  /** Tried in order until one serves the expected bytes. */
  urls: readonly string[];
}

/**
 * Each attempt streams to a temporary name beside `dest`, hashing as it goes, and is renamed
 * into place only when the sha256 matches; otherwise the temporary file is deleted and the
 * next URL is tried. A verified copy already at `dest` is kept without downloading.
 */
export async function downloadVerified(
  target: VerifiedDownload,
  opts: Pick<FetchOptions, 'onProgress' | 'timeoutMs'> = {},
): Promise<FetchedFile> {
  const { file, dest, sha256 } = target;
  if (existsSync(dest) && (await hashFile(dest)) === sha256) {
    return { file, path: dest, bytes: (await stat(dest)).size, sha256, downloaded: false };
  }
  const failures: string[] = [];
  let mismatch: string | null = null;
  for (const url of target.urls) {
    const tmp = `${dest}.${process.pid}-${randomBytes(4).toString('hex')}.part`;
    try {
      const got = await download(url, tmp, target, opts);
      if (got.sha256 === sha256) {
        await rename(tmp, dest);
        return { file, path: dest, bytes: got.bytes, sha256, downloaded: true, url };
      }
      mismatch ??= `checksum mismatch for ${file} from ${url}: expected sha256 ${sha256}, got ${got.sha256} (${got.bytes} bytes); the download was discarded`;
      failures.push(`${url}: sha256 mismatch`);
    } catch (e) {
      failures.push(`${url}: ${errorMessage(e)}`);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }
  if (mismatch) {
    throw new RuntimeFailure(mismatch, 'the server sent other bytes than the published file; try again later or fetch it by hand and check its sha256');
  }
  throw new RuntimeFailure(`could not download ${file}: ${failures.join('; ') || 'no URL to try'}`);
}

async function download(url: string, tmp: string, target: VerifiedDownload, opts: Pick<FetchOptions, 'onProgress' | 'timeoutMs'>): Promise<{ sha256: string; bytes: number }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000) });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || target.bytes;
  const hash = createHash('sha256');
  const fh = await open(tmp, 'w');
  let bytes = 0;
  try {
    for await (const chunk of res.body) {
      hash.update(chunk);
      await fh.write(chunk);
      bytes += chunk.length;
      opts.onProgress?.({ file: target.file, url, received: bytes, total });
    }
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}
