/**
 * Run folders are written under a hidden temporary name beside their destination and renamed
 * into place only when complete, so an interrupted or failed run never leaves a folder that
 * looks finished. Single files are written the same way (temp file + rename).
 */
import { mkdir, rename, rm, stat, writeFile, access } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { UsageError, RuntimeFailure, errorMessage } from '../errors.js';

export interface RunFolder {
  /** Where to write files while the run is in progress. */
  readonly workDir: string;
  /** Final location. */
  readonly finalDir: string;
  commit(): Promise<string>;
  abort(): Promise<void>;
}

/** Unfinished outputs (run folders, partial files) to remove if the process is interrupted. */
const live = new Set<{ abort(): Promise<void> }>();

/**
 * Track a partial file (written under a temporary name, renamed when complete) so that Ctrl-C
 * removes it too; call `release` once it has been renamed or removed.
 */
export function trackPartialFile(file: string): { release(): void } {
  const handle = { abort: () => rm(file, { force: true }) };
  live.add(handle);
  return { release: () => void live.delete(handle) };
}

/**
 * Removals already under way. A second caller (the failing main flow after the Ctrl-C handler
 * began) must wait for them too, or it exits while a removal is half done.
 */
const removing = new Set<Promise<void>>();

/** Remove unfinished run folders and partial files on Ctrl-C before exiting with 130. */
export async function abortAllRunFolders(): Promise<void> {
  for (const r of [...live]) {
    live.delete(r);
    const p = r.abort().catch(() => undefined);
    removing.add(p);
  }
  await Promise.all([...removing]);
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export function defaultRunDir(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return path.join('runs', `${stamp}-${name.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
}

export async function createRunFolder(finalDir: string, opts: { force?: boolean } = {}): Promise<RunFolder> {
  const abs = path.resolve(finalDir);
  if ((await exists(abs)) && !opts.force) {
    throw new UsageError(`output folder ${finalDir} already exists`, 'pass --force to replace it, or choose another --out');
  }
  const parent = path.dirname(abs);
  try {
    await mkdir(parent, { recursive: true });
    await access(parent, constants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot write to ${parent}: ${errorMessage(e)}`);
  }
  const workDir = path.join(parent, `.${path.basename(abs)}.partial-${process.pid}`);
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  let done = false;
  let aborting: Promise<void> | undefined;
  const folder: RunFolder = {
    workDir,
    finalDir: abs,
    async commit() {
      if (done) return abs;
      if (await exists(abs)) {
        if (!opts.force) throw new UsageError(`output folder ${finalDir} appeared while the run was in progress`);
        await rm(abs, { recursive: true, force: true });
      }
      try {
        await rename(workDir, abs);
      } catch (e) {
        throw new RuntimeFailure(`could not move the finished run into ${abs}: ${errorMessage(e)}`);
      }
      done = true;
      live.delete(folder);
      return abs;
    },
    abort() {
      if (aborting) return aborting;
      if (done) return Promise.resolve();
      done = true;
      live.delete(folder);
      aborting = discard(workDir);
      return aborting;
    },
  };
  live.add(folder);
  return folder;
}

/**
 * Remove an unfinished work folder while writers may still be creating files in it: a plain
 * recursive rm can lose that race (a file appears between its readdir and rmdir, and it fails
 * with ENOTEMPTY). Renaming first takes the folder away from the writers in one step.
 */
async function discard(workDir: string): Promise<void> {
  const trash = `${workDir}.discard`;
  let target = workDir;
  try {
    await rename(workDir, trash);
    target = trash;
  } catch {
    // Already gone, or not renamable: remove it where it is.
  }
  await rm(target, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
}

/** Write a whole file atomically (temp + rename in the same folder). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  const tracked = trackPartialFile(tmp);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new RuntimeFailure(`could not write ${file}: ${errorMessage(e)}`);
  } finally {
    tracked.release();
  }
}

/** File-system-safe, unique stems for layer ids such as `/conv1/Conv_output_0` or `dense_Dense1`. */
export function fileStems(ids: readonly string[]): Map<string, string> {
  const used = new Set<string>();
  const out = new Map<string, string>();
  for (const id of ids) {
    let base = id.replace(/^[/\\]+/, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_') || 'layer';
    if (base.length > 100) base = base.slice(0, 100);
    let stem = base;
    for (let i = 2; used.has(stem.toLowerCase()); i++) stem = `${base}-${i}`;
    used.add(stem.toLowerCase());
    out.set(id, stem);
  }
  return out;
}

/**
 * Claim `out` (refusing an existing folder without --force) before `work` runs, so a taken name
 * fails at once rather than after minutes of computing; `work` writes into the hidden work folder,
 * which becomes `out` only when it returns. Any error (or Ctrl-C) removes it. With `out`
 * undefined, `work` runs with no folder.
 */
export async function withRunFolder<T>(out: string | undefined, opts: { force?: boolean }, work: (dir: string | null) => Promise<T>): Promise<T> {
  if (out === undefined) return work(null);
  const folder = await createRunFolder(out, opts);
  try {
    const result = await work(folder.workDir);
    await folder.commit();
    return result;
  } catch (e) {
    await folder.abort();
    throw e;
  }
}
