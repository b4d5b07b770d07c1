/**
 * Run folders are written under a hidden temporary name beside their destination and renamed
 * into place only when complete, so an interrupted or failed run never leaves a folder that
 * looks finished. Single files are written the same way (temp file + rename).
 */
import { lstat, mkdir, rename, rm, rmdir, stat, writeFile, access, readdir } from 'node:fs/promises';
import { constants, rmSync } from 'node:fs';
import path from 'node:path';
import { UsageError, RuntimeFailure, errorMessage } from '../errors.js';
import { mkdirSteps } from '../util/mkdir-steps.js';
import { onWatchdogFire } from '../util/watchdog.js';

export interface RunFolder {
  /** Where to write files while the run is in progress. */
  readonly workDir: string;
  /** Final location. */
  /** Where the run is moved when it commits (a default name may move on to a free `-2`, `-3`, …). */
  finalDir: string;
  commit(): Promise<string>;
  abort(): Promise<void>;
  /** As abort, synchronously, for when nothing asynchronous can run any more. */
  abortSync(): void;
}

/** Unfinished outputs (run folders, partial files) to remove if the process is interrupted. */
const live = new Set<{ abort(): Promise<void>; abortSync(): void }>();

// A third-party call stuck past its deadline ends the process from inside the busy thread, where
// nothing asynchronous can run: unfinished outputs go synchronously.
onWatchdogFire(() => {
  for (const r of live) r.abortSync();
});

/**
 * Track a partial file (written under a temporary name, renamed when complete) so that Ctrl-C
 * removes it too; call `release` once it has been renamed or removed.
 */
export function trackPartialFile(file: string): { release(): void } {
  const handle = { abort: () => rm(file, { force: true }), abortSync: () => rmSync(file, { force: true }) };
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

/** `.<name>.partial-<pid>` and its `.discard`: the hidden work folders of runs in progress. */
const PARTIAL = /^\.(.+)\.partial-(\d+)(?:\.discard)?$/;

/** Whether process `pid` exists (EPERM: it does, under another user). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the hidden work folders in `parent` whose owner process is gone: a run killed with
 * SIGKILL (or by a power cut, or by Ctrl-C during a call only the default action can stop) has
 * no chance to remove its own, so the next run in the same folder does. A folder whose pid
 * belongs to a live process is left alone, even if that pid was reused. Returns what was removed.
 */
export async function sweepStalePartials(parent: string): Promise<string[]> {
  const names = await readdir(parent).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const m = PARTIAL.exec(name);
    if (!m || processAlive(Number(m[2]))) continue;
    const p = path.join(parent, name);
    const st = await lstat(p).catch(() => null);
    if (!st?.isDirectory()) continue;
    await rm(p, { recursive: true, force: true }).then(() => removed.push(p), () => undefined);
  }
  return removed;
}

export function defaultRunDir(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return path.join('runs', `${stamp}-${name.replace(/[^A-Za-z0-9._-]+/g, '_')}`);
}

/**
 * Files that mark a folder as something layerprobe wrote: audit and extract runs, trained models,
 * sweeps, theory results.
 */
const OUTPUT_MARKERS = ['manifest.json', 'report.json', 'card.json', 'monitor.json', 'sweep.json', 'result.json', 'phase.json', 'uos.json'];

/**
 * `--force` replaces an earlier output, never anything else: not the current folder or one
 * above it, not a plain file, not a folder holding one of this run's inputs, and not a folder
 * that holds files but none that layerprobe writes.
 */
async function checkReplaceable(abs: string, given: string, inputs: readonly string[]): Promise<void> {
  const rel = path.relative(abs, process.cwd());
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw new UsageError(`--force will not replace ${given}: it is the current folder or holds it`, 'choose another --out');
  }
  const st = await stat(abs);
  if (!st.isDirectory()) throw new UsageError(`--force will not replace ${given}: it is a file, not an output folder`, 'choose another --out');
  for (const input of inputs) {
    const r = path.relative(abs, path.resolve(input));
    if (r === '' || (!r.startsWith('..') && !path.isAbsolute(r))) {
      throw new UsageError(`--force will not replace ${given}: it holds ${input}, an input of this run`, 'choose another --out');
    }
  }
  const entries = await readdir(abs);
  if (entries.length > 0 && !entries.some((e) => OUTPUT_MARKERS.includes(e))) {
    throw new UsageError(`--force will not replace ${given}: it does not look like a layerprobe output (none of ${OUTPUT_MARKERS.join(', ')})`, 'remove it yourself, or choose another --out');
  }
}

export interface RunFolderOptions {
  force?: boolean;
  /** Files this run reads: an existing output is never replaced when it holds one of them. */
  inputs?: readonly string[];
  /**
   * A default name (runs/<time>-…): when it is taken, at the start or by a parallel run by the
   * time this one finishes, use the next free `<name>-2`, `-3`, … instead of failing.
   */
  unique?: boolean;
}

async function freeName(abs: string): Promise<string> {
  if (!(await exists(abs))) return abs;
  for (let i = 2; ; i++) if (!(await exists(`${abs}-${i}`))) return `${abs}-${i}`;
}

export async function createRunFolder(finalDir: string, opts: RunFolderOptions = {}): Promise<RunFolder> {
  const base = path.resolve(finalDir);
  let abs = opts.unique ? await freeName(base) : base;
  if (await exists(abs)) {
    if (!opts.force) throw new UsageError(`output folder ${finalDir} already exists`, 'pass --force to replace it, or choose another --out');
    await checkReplaceable(abs, finalDir, opts.inputs ?? []);
  }
  const parent = path.dirname(abs);
  let createdParent: string | undefined;
  try {
    createdParent = await mkdirSteps(parent);
    await access(parent, constants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot write to ${parent}: ${errorMessage(e)}`);
  }
  await sweepStalePartials(parent);
  const workDir = path.join(parent, `.${path.basename(abs)}.partial-${process.pid}`);
  try {
    await rm(workDir, { recursive: true, force: true });
    await mkdir(workDir);
  } catch (e) {
    throw new UsageError(`cannot write to ${parent}: ${errorMessage(e)}`);
  }
  /** A failed run leaves no trace, not even the `runs/` folder it created for itself. */
  const removeCreatedParents = async () => {
    if (!createdParent) return;
    for (let dir = parent; dir.length >= createdParent.length; dir = path.dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (another run), or already gone
      }
    }
  };
  let done = false;
  let aborting: Promise<void> | undefined;
  const folder: RunFolder = {
    workDir,
    finalDir: abs,
    async commit() {
      if (done) return abs;
      if (await exists(abs)) {
        if (opts.unique) abs = await freeName(base);
        else if (!opts.force) throw new UsageError(`output folder ${finalDir} appeared while the run was in progress`);
        else await rm(abs, { recursive: true, force: true });
      }
      try {
        await rename(workDir, abs);
      } catch (e) {
        throw new RuntimeFailure(`could not move the finished run into ${abs}: ${errorMessage(e)}`);
      }
      done = true;
      live.delete(folder);
      folder.finalDir = abs;
      return abs;
    },
    abort() {
      if (aborting) return aborting;
      if (done) return Promise.resolve();
      done = true;
      live.delete(folder);
      aborting = discard(workDir).then(removeCreatedParents);
      return aborting;
    },
    abortSync() {
      if (done) return;
      done = true;
      rmSync(workDir, { recursive: true, force: true });
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
  // A writer still in flight (mkdir -p of a subfolder, say) can re-create the work folder after
  // the rename; sweep it once more, synchronously, right before the caller exits.
  rmSync(workDir, { recursive: true, force: true });
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
export async function withRunFolder<T>(out: string | undefined, opts: RunFolderOptions, work: (dir: string | null) => Promise<T>): Promise<T> {
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
