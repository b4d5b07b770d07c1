/**
 * Pack layerprobe and install the tarball into a fresh folder the way a user without general
 * internet would: npm with --offline (the default npm cache is the only source of dependency
 * tarballs; npm's cache is keyed by the default registry's URLs, so that stays), every proxy pointed
 * at a closed port (onnxruntime-node's downloader honours GLOBAL_AGENT_*), and none of this repository's
 * npm settings (its allowScripts, and the npm_config_* variables an outer `npm test` exports, are left
 * out — so onnxruntime-node's CUDA download is kept away by the package itself, not by them).
 *
 * The folder gets a package-lock.json derived from the repository's (the packed tarball plus the
 * production dependency tree): `npm i <tarball>` would first need the registry's package metadata,
 * which `npm ci` of the repository does not cache, while the tarballs themselves are cached.
 * Used by test/package.test.ts and bench/package-size.ts.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, lstatSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [k: string]: unknown;
}

/** The environment of a user's shell: no npm_config_* from an outer npm, no onnxruntime flags, no network. */
export function offlineEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^ONNXRUNTIME_NODE_INSTALL/i.test(k) || /proxy/i.test(k) || k === 'LAYERPROBE_USE_DIST') continue;
    env[k] = v;
  }
  const dead = 'http://127.0.0.1:9';
  return {
    ...env,
    HTTP_PROXY: dead,
    HTTPS_PROXY: dead,
    GLOBAL_AGENT_HTTP_PROXY: dead,
    GLOBAL_AGENT_HTTPS_PROXY: dead,
    CI: '1',
    ...extra,
  };
}

/** Where npm keeps its cache here (as set for this user or this shell, e.g. by CI), read outside the repository. */
export function npmCacheDir(): string {
  const r = spawnSync('npm', ['config', 'get', 'cache'], { cwd: os.tmpdir(), encoding: 'utf8' });
  return r.stdout.trim() || path.join(os.homedir(), '.npm');
}

/** `npm pack` in the repository (its prepack builds dist/); the tarball's path. */
export function pack(dest: string): string {
  const r = spawnSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`npm pack failed:\n${r.stderr}`);
  const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { filename: string }[];
  return path.join(dest, info[0]!.filename);
}

/** A lock for a project whose one dependency is the tarball: the repository's production tree. */
export function projectLock(tarball: string): { pkg: unknown; lock: unknown } {
  const repoLock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as LockEntry & { name: string; license?: string; bin?: unknown; engines?: unknown };
  const src = repoLock.packages;
  // Node's lookup inside the lock: the nearest node_modules/<name> above `from`.
  const resolve = (from: string, name: string): string | null => {
    for (let p = from; ; p = p.includes('/node_modules/') ? p.slice(0, p.lastIndexOf('/node_modules/')) : '') {
      const k = (p ? p + '/' : '') + 'node_modules/' + name;
      if (src[k]) return k;
      if (!p) return null;
    }
  };
  const keep = new Set<string>();
  const walk = (key: string, deps: Record<string, string>) => {
    for (const name of Object.keys(deps)) {
      const k = resolve(key, name);
      if (k && !keep.has(k)) {
        keep.add(k);
        walk(k, { ...src[k]!.dependencies, ...src[k]!.optionalDependencies });
      }
    }
  };
  walk('', { ...pkg.dependencies, ...pkg.optionalDependencies });
  const file = `file:${path.basename(tarball)}`;
  const integrity = 'sha512-' + createHash('sha512').update(readFileSync(tarball)).digest('base64');
  const packages: Record<string, unknown> = {
    '': { name: 'layerprobe-install-check', version: '1.0.0', dependencies: { [pkg.name]: file } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: file,
      integrity,
      hasInstallScript: true,
      license: pkg.license,
      dependencies: pkg.dependencies,
      optionalDependencies: pkg.optionalDependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const k of [...keep].sort()) packages[k] = src[k];
  return {
    pkg: { name: 'layerprobe-install-check', version: '1.0.0', private: true, dependencies: { [pkg.name]: file } },
    lock: { name: 'layerprobe-install-check', version: '1.0.0', lockfileVersion: 3, requires: true, packages },
  };
}

/** Bytes under a folder (files only, links not followed). */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const s = lstatSync(p);
    if (s.isDirectory()) total += folderBytes(p);
    else if (s.isFile()) total += s.size;
  }
  return total;
}

export interface OfflineInstall {
  dir: string;
  tarball: string;
  tarballBytes: number;
  installMs: number;
  nodeModulesBytes: number;
  stderr: string;
}

/**
 * Pack, then install offline into a new temporary folder. Throws with npm's output on failure.
 * ignoreScripts: install as an npm that holds back dependencies' install scripts would.
 */
export function packAndInstallOffline(o: { ignoreScripts?: boolean } = {}): OfflineInstall {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-install-'));
  const tarball = pack(dir);
  const { pkg, lock } = projectLock(tarball);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
  const t0 = performance.now();
  const r = spawnSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--cache', npmCacheDir(), ...(o.ignoreScripts ? ['--ignore-scripts'] : [])], { cwd: dir, encoding: 'utf8', env: offlineEnv(), maxBuffer: 1 << 26 });
  const installMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`offline install failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { dir, tarball, tarballBytes: statSync(tarball).size, installMs, nodeModulesBytes: folderBytes(path.join(dir, 'node_modules')), stderr: r.stderr };
}
