/**
 * `mkdir -p` done one plain call at a time. Node 20's `mkdir(p, { recursive: true })` never
 * returns under some special file systems (`-o /proc/x` hung: procfs answers its internal probe
 * in a way the recursive walk loops on). Here the nearest existing ancestor is found with stat,
 * then each missing folder is made with a plain, non-recursive mkdir, so any refusal surfaces as
 * an ordinary error (ENOENT, EACCES, ENOTDIR, EROFS) on the first folder that cannot be made.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Creates `dir` and its missing parents; returns the first folder created (undefined if none). */
export async function mkdirSteps(dir: string): Promise<string | undefined> {
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    const st = await stat(at).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), { code: 'ENOTDIR', path: at });
      break;
    }
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing.reverse()) {
    await mkdir(d).catch((e: NodeJS.ErrnoException) => {
      // Made by a parallel run between the stat and here: fine, if it is a folder.
      if (e.code !== 'EEXIST') throw e;
    });
  }
  return missing[0];
}
