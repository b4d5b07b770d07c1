/**
 * The package as a user gets it: `npm pack`, an offline install of the tarball into a fresh folder
 * (no network; only the tarball and the npm cache; none of this repository's npm settings — see
 * bench/package-install.ts), then the installed CLI and API, run from that folder.
 *
 * Checks that the install needs no download (onnxruntime-node's CUDA fetch is kept away by the
 * package's preinstall), that onnxruntime-node keeps only this platform's binaries and still runs
 * (a small audit: the TF.js model converted to ONNX, checked against TF.js wasm — which needs
 * the tfjs-core registrations bundled into vendor/), that the bin runs the compiled dist/ without tsx, that shipped names
 * resolve inside the installed package and that the API imports — by default. With
 * LAYERPROBE_SLOW_TESTS=1 (`npm run test:slow`) also that the ONNX twin derived on demand is
 * byte-identical to the one the repository keeps, and that an audit from the installed package
 * gives the numbers the sources give.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { offlineEnv, packAndInstallOffline, ROOT, type OfflineInstall } from '../bench/package-install.js';
import { audit } from '../src/index.js';

function npmAvailable(): boolean {
  return spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

const SLOW = process.env.LAYERPROBE_SLOW_TESTS === '1';

/** One pack and offline install for the tests of this file (the slow part), removed at the end. */
let installing: Promise<OfflineInstall | string> | null = null;
function installed(): Promise<OfflineInstall | string> {
  installing ??= Promise.resolve().then(() => {
    try {
      return packAndInstallOffline();
    } catch (e) {
      // A cache without the dependency tarballs (npm ci not run on this machine) cannot be told
      // apart from a broken install by exit code; say which it was.
      const msg = (e as Error).message;
      if (/ENOTCACHED/.test(msg)) return `the npm cache lacks a dependency tarball (run npm ci once): ${/request to (\S+)/.exec(msg)?.[1] ?? ''}`;
      throw e;
    }
  });
  return installing;
}
after(async () => {
  const inst = installing ? await installing.catch(() => null) : null;
  if (inst && typeof inst !== 'string') rmSync(inst.dir, { recursive: true, force: true });
});

function runner(inst: OfflineInstall) {
  const cache = path.join(inst.dir, 'xdg-cache');
  const env = offlineEnv({ XDG_CACHE_HOME: cache });
  const run = (args: string[]) => spawnSync(process.execPath, [path.join(inst.dir, 'node_modules/.bin/layerprobe'), ...args], { cwd: inst.dir, encoding: 'utf8', env, timeout: 120_000 });
  return { cache, env, run, pkg: path.join(inst.dir, 'node_modules/layerprobe') };
}

test('pack, install offline into a fresh folder, run the CLI and import the API', { skip: npmAvailable() ? false : 'npm is not on PATH' }, async (t) => {
  const inst = await installed();
  if (typeof inst === 'string') return t.skip(inst);
  const { dir } = inst;
  const { env, run, pkg } = runner(inst);
  // Installed as a user gets it: compiled code, no sources, no tsx.
  assert.ok(existsSync(path.join(pkg, 'dist/cli/main.js')));
  assert.ok(!existsSync(path.join(pkg, 'src')), 'the package ships dist/, not src/');
  assert.ok(!existsSync(path.join(dir, 'node_modules/tsx')), 'tsx is a dev dependency only');
  assert.ok(existsSync(path.join(pkg, 'docs/metrics/probe.md')), 'docs/ ship with the package');
  assert.ok(!existsSync(path.join(pkg, 'models/fmnist-mlp/model.onnx')), 'each model is shipped once (TF.js)');

  const layers = run(['layers', 'fmnist-mlp']);
  assert.equal(layers.status, 0, layers.stderr);
  assert.match(layers.stdout, /dense_1\s+Dense\s+\[N,256\]/);
  assert.ok(layers.stdout.startsWith(path.join(pkg, 'models/fmnist-mlp/model.json')), layers.stdout.split('\n')[0]);

  // onnxruntime-node keeps only this platform's binaries (the preinstall removes the others' ~255 MB)
  // and still runs: a TF.js model goes through the ONNX conversion and onnxruntime by default.
  const napi = path.join(dir, 'node_modules/onnxruntime-node/bin/napi-v6');
  const kept = readdirSync(napi).flatMap((p) => readdirSync(path.join(napi, p)).map((a) => `${p}/${a}`));
  assert.deepEqual(kept, [`${process.platform}/${process.arch}`]);
  const out = path.join(dir, 'small');
  const small = run(['audit', '-m', 'fmnist-mlp', '-d', 'fashion-mnist', '--per-class', '5', '--metrics', 'geometry', '--baseline', 'none', '-o', out, '-q']);
  assert.equal(small.status, 0, small.stderr);
  const backend = (JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { models: { backend: string }[] }).models[0]!.backend;
  assert.match(backend, /^onnxruntime-node .*converted from TF\.js; checked against tfjs wasm/);

  // Training needs tfjs-core's gradients, which the package bundles into vendor/ (no umbrella):
  // one short epoch must learn (chance is 0.1) and match the sources' run weight for weight.
  const trained = run(['train', '--arch', 'mlp', '--epochs', '1', '--limit', '256', '--test-limit', '100', '-o', path.join(dir, 'mlp'), '-q']);
  assert.equal(trained.status, 0, trained.stderr);
  const card = JSON.parse(readFileSync(path.join(dir, 'mlp/card.json'), 'utf8')) as { metrics: { testAccuracy: number } };
  assert.ok(card.metrics.testAccuracy > 0.3, `test accuracy ${card.metrics.testAccuracy} after one epoch`);
  const srcArgs = ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'train', '--arch', 'mlp', '--epochs', '1', '--limit', '256', '--test-limit', '100', '-o', path.join(dir, 'mlp-src'), '-q'];
  const fromSources = spawnSync(process.execPath, srcArgs, { cwd: ROOT, encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(fromSources.status, 0, fromSources.stderr);
  assert.equal(sha256(path.join(dir, 'mlp/weights.bin')), sha256(path.join(dir, 'mlp-src/weights.bin')));

  const api = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('layerprobe'); console.log(JSON.stringify({ audit: typeof m.audit, extract: typeof m.extract, spec: m.shippedSpec(), data: m.shippedDataset() }))"],
    { cwd: dir, encoding: 'utf8', env },
  );
  assert.equal(api.status, 0, api.stderr);
  const info = JSON.parse(api.stdout) as { audit: string; extract: string; spec: string; data: string };
  assert.equal(info.audit, 'function');
  assert.equal(info.extract, 'function');
  assert.equal(info.spec, path.join(pkg, 'probes/fmnist-zoo.yaml'));
  assert.ok(existsSync(path.join(info.data, 't10k-images-idx3-ubyte.gz')));
  t.diagnostic(`tarball ${(inst.tarballBytes / 1e6).toFixed(2)} MB, node_modules ${(inst.nodeModulesBytes / 1e6).toFixed(0)} MB, install ${(inst.installMs / 1000).toFixed(0)} s`);
});

test('the installed package derives the same ONNX twin and audits to the same numbers as the sources (LAYERPROBE_SLOW_TESTS=1)', { skip: !SLOW ? 'slow: set LAYERPROBE_SLOW_TESTS=1 (npm run test:slow)' : npmAvailable() ? false : 'npm is not on PATH' }, async (t) => {
  const inst = await installed();
  if (typeof inst === 'string') return t.skip(inst);
  const { dir } = inst;
  const { cache, run } = runner(inst);
  // The ONNX twin, derived on first use into the user cache: the same bytes as the repository's.
  const onnx = run(['layers', 'fmnist-mlp.onnx', '--json']);
  assert.equal(onnx.status, 0, onnx.stderr);
  const derived = (JSON.parse(onnx.stdout) as { result: { path: string } }).result.path;
  assert.ok(derived.startsWith(cache), derived);
  assert.equal(sha256(derived), sha256(path.join(ROOT, 'models/fmnist-mlp/model.onnx')));

  const out = path.join(dir, 'run');
  const a = run(['audit', '-m', 'fmnist-mlp', '-d', 'fashion-mnist', '--per-class', '10', '--metrics', 'geometry', '-o', out, '-q']);
  assert.equal(a.status, 0, a.stderr);
  const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as { models: { layers: { id: string; metrics: Record<string, { value: number }> }[] }[] };
  // The same audit through the sources: the package must not change a number.
  const ref = await audit({ models: [{ path: path.join(ROOT, 'models/fmnist-mlp/model.json') }], dataset: 'fashion-mnist', perClass: 10, metrics: ['geometry'], out: path.join(dir, 'ref') });
  const got = report.models[0]!.layers.map((l) => [l.id, l.metrics.compression!.value, l.metrics.discrimination!.value]);
  const want = ref.report.models[0]!.layers.map((l) => [l.id, l.metrics.compression!.value, l.metrics.discrimination!.value]);
  assert.deepEqual(got, want);
});
