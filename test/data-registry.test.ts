import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import {
  cacheRoot,
  datasetInfo,
  downloadVerified,
  fetchDataset,
  openRegistryDataset,
  searchDirs,
  type FetchProgress,
} from '../src/data/registry.js';

const MNIST_DIR = resolve(import.meta.dirname, '../../shared/assets/data/mnist');
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const hasMnist = existsSync(join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
const hasFashion = existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let dir: string;
let server: Server;
let base: string;
/** Path → body served by the local server; anything else is a 404. */
const routes = new Map<string, Uint8Array>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'layerprobe-reg-'));
  server = createServer((req, res) => {
    const body = routes.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length) });
    // Two writes so the client sees more than one chunk.
    const half = Math.floor(body.length / 2);
    res.write(body.subarray(0, half));
    res.end(body.subarray(half));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((ok) => server.close(() => ok()));
  await rm(dir, { recursive: true, force: true });
});

describe('verified download', () => {
  const payload = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31) % 256));
  const good = sha(payload);

  test('good payload: renamed into place after the sha256 matched, progress reported', async () => {
    routes.set('/good/blob.bin', payload);
    const dest = join(dir, 'dl1', 'blob.bin');
    await mkdir(join(dir, 'dl1'));
    const events: FetchProgress[] = [];
    const r = await downloadVerified(
      { file: 'blob.bin', dest, sha256: good, bytes: payload.length, urls: [`${base}/missing/blob.bin`, `${base}/good/blob.bin`] },
      { onProgress: (p) => events.push(p) },
    );
    assert.equal(r.downloaded, true);
    assert.equal(r.url, `${base}/good/blob.bin`);
    assert.deepEqual(await readFile(dest), payload);
    assert.equal(events.at(-1)?.received, payload.length);
    assert.equal(events.at(-1)?.total, payload.length);
    // A verified copy in place is not downloaded again.
    routes.delete('/good/blob.bin');
    const again = await downloadVerified({ file: 'blob.bin', dest, sha256: good, bytes: payload.length, urls: [`${base}/good/blob.bin`] });
    assert.equal(again.downloaded, false);
    assert.deepEqual(await readdir(join(dir, 'dl1')), ['blob.bin']);
  });

  test('corrupted payload: RuntimeFailure, temp file deleted, nothing renamed', async () => {
    const bad = Buffer.from(payload);
    bad[5000] = bad[5000]! ^ 1;
    routes.set('/bad/blob.bin', bad);
    await mkdir(join(dir, 'dl2'));
    const dest = join(dir, 'dl2', 'blob.bin');
    await assert.rejects(
      downloadVerified({ file: 'blob.bin', dest, sha256: good, bytes: payload.length, urls: [`${base}/bad/blob.bin`] }),
      (e: unknown) => {
        assert.ok(e instanceof RuntimeFailure);
        assert.ok(e.message.includes('checksum mismatch') && e.message.includes(good) && e.message.includes(sha(bad)), e.message);
        return true;
      },
    );
    assert.deepEqual(await readdir(join(dir, 'dl2')), []);
  });

  test('unreachable mirrors: RuntimeFailure listing each URL', async () => {
    await mkdir(join(dir, 'dl3'));
    await assert.rejects(
      downloadVerified({ file: 'x', dest: join(dir, 'dl3', 'x'), sha256: good, bytes: 1, urls: [`${base}/nope/x`, 'http://127.0.0.1:1/x'] }),
      (e: unknown) => e instanceof RuntimeFailure && e.message.includes('HTTP 404') && e.message.includes('127.0.0.1:1'),
    );
    assert.deepEqual(await readdir(join(dir, 'dl3')), []);
  });

  test('fetchDataset mnist test split from a local mirror, verified against the registry', async (t) => {
    if (!hasMnist) return t.skip('needs ../shared/assets/data/mnist (absent)');
    for (const f of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) routes.set(`/mirror/${f}`, await readFile(join(MNIST_DIR, f)));
    const target = join(dir, 'cache-mnist');
    const got = await fetchDataset('mnist', { split: 'test', baseUrls: [`${base}/mirror/`], dir: target });
    assert.deepEqual(got.map((g) => [g.file, g.downloaded]), [['t10k-images-idx3-ubyte.gz', true], ['t10k-labels-idx1-ubyte.gz', true]]);
    assert.equal(got[1]!.sha256, 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6');
    const ds = await openRegistryDataset('mnist', 'test', { dirs: [{ location: 'cache', dir: target }] });
    assert.equal(ds.labels.length, 10000);
    assert.equal(ds.source.detail?.checksum, 'official');

    const labels = Buffer.from(await readFile(join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz')));
    labels[100] = labels[100]! ^ 0x10;
    routes.set('/evil/t10k-labels-idx1-ubyte.gz', labels);
    routes.set('/evil/t10k-images-idx3-ubyte.gz', await readFile(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz')));
    const evil = join(dir, 'cache-evil');
    await assert.rejects(fetchDataset('mnist', { split: 'test', baseUrls: [`${base}/evil/`], dir: evil }), (e: unknown) => e instanceof RuntimeFailure && e.message.includes('checksum mismatch'));
    assert.deepEqual(await readdir(evil), ['t10k-images-idx3-ubyte.gz']);
  });

  test('fetchDataset fashion-mnist: a rebuilt official file verifies, the Debian one does not', async (t) => {
    if (!hasFashion) return t.skip('needs /usr/share/datasets/fashion-mnist (absent)');
    // Debian normalised the gzip header (no name, fixed mtime); restoring the official header
    // fields reproduces the published file, whose sha256 the registry must accept.
    const deb = await readFile(join(FASHION_DIR, 't10k-labels-idx1-ubyte.gz'));
    const head = Buffer.from([0x1f, 0x8b, 0x08, 0x08, 0, 0, 0, 0, deb[8]!, deb[9]!]);
    head.writeUInt32LE(1504176627, 4);
    const official = Buffer.concat([head, Buffer.from('t10k-labels-idx1-ubyte\0', 'latin1'), deb.subarray(10)]);
    assert.equal(createHash('md5').update(official).digest('hex'), 'bb300cfdad3c16e7a12a480ee83cd310');
    routes.set('/fm/t10k-labels-idx1-ubyte.gz', official);
    routes.set('/deb/t10k-labels-idx1-ubyte.gz', deb);
    const target = join(dir, 'cache-fm');
    await mkdir(target);
    const one = await downloadVerified({
      file: 't10k-labels-idx1-ubyte.gz', dest: join(target, 't10k-labels-idx1-ubyte.gz'),
      sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5', bytes: 5148,
      urls: [`${base}/deb/t10k-labels-idx1-ubyte.gz`, `${base}/fm/t10k-labels-idx1-ubyte.gz`],
    });
    assert.equal(one.url, `${base}/fm/t10k-labels-idx1-ubyte.gz`);
    assert.deepEqual(gunzipSync(await readFile(one.path)), gunzipSync(deb));
  });
});

describe('registry', () => {
  test('search order: $LAYERPROBE_DATA, package datasets/, system, cache (XDG_CACHE_HOME respected)', () => {
    const dirs = searchDirs('fashion-mnist', { env: { LAYERPROBE_DATA: '/data', XDG_CACHE_HOME: '/xdg', HOME: '/home/u' } });
    assert.deepEqual(dirs.map((d) => d.location), ['env', 'package', 'system', 'cache']);
    assert.equal(dirs[0]!.dir, '/data/fashion-mnist');
    assert.equal(dirs[1]!.dir, resolve(import.meta.dirname, '..', 'datasets', 'fashion-mnist'));
    assert.equal(dirs[2]!.dir, '/usr/share/datasets/fashion-mnist');
    assert.equal(dirs[3]!.dir, '/xdg/layerprobe/datasets/fashion-mnist');
    assert.equal(cacheRoot({ HOME: '/home/u' }), '/home/u/.cache/layerprobe/datasets');
    assert.deepEqual(searchDirs('mnist', { env: {} }).slice(1).map((d) => d.dir).slice(0, 1), ['/usr/share/datasets/mnist']);
  });

  test('missing files → UsageError whose hint says how to get them', async () => {
    const empty = [{ location: 'cache' as const, dir: join(dir, 'nothing') }];
    await assert.rejects(openRegistryDataset('mnist', 'train', { dirs: empty }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.ok(e.message.includes('train-images-idx3-ubyte.gz') && e.message.includes('train-labels-idx1-ubyte.gz'), e.message);
      assert.ok(e.hint?.includes('layerprobe datasets fetch mnist'), e.hint);
      return true;
    });
    await assert.rejects(openRegistryDataset('fashion-mnist', 'test', { dirs: empty }),
      (e: unknown) => e instanceof UsageError && (e.hint ?? '').includes('apt-get install dataset-fashion-mnist'));
    await assert.rejects(openRegistryDataset('fasion-mnist', 'test'), (e: unknown) => e instanceof UsageError && (e.hint ?? '').includes('fashion-mnist'));
  });

  test('datasetInfo reports found and missing files; verify recognises same-content copies', async (t) => {
    if (!hasMnist) return t.skip('needs ../shared/assets/data/mnist (absent)');
    const d = join(dir, 'info');
    await mkdir(d);
    await copyFile(join(MNIST_DIR, 't10k-images-idx3-ubyte.gz'), join(d, 't10k-images-idx3-ubyte.gz'));
    // An ungzipped copy of the labels counts, and is verified through the content digest.
    await writeFile(join(d, 't10k-labels-idx1-ubyte'), gunzipSync(await readFile(join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz'))));
    const info = await datasetInfo('mnist', { dirs: [{ location: 'env', dir: d }], verify: true });
    assert.deepEqual(info.classes.length, 10);
    assert.equal(info.splits.test.available, true);
    assert.equal(info.splits.train.available, false);
    assert.deepEqual(info.splits.test.files.map((f) => f.verification), ['official', 'same-content']);
    assert.equal(info.splits.test.files[0]!.bytes, 1648877);
    assert.deepEqual(info.splits.train.files.map((f) => f.path), [null, null]);
    assert.equal(info.splits.train.count, 60000);
  });

  test('real Fashion-MNIST train from the Debian package: 60,000 items, 6,000 per class', async (t) => {
    if (!hasFashion) return t.skip('needs /usr/share/datasets/fashion-mnist (absent)');
    const ds = await openRegistryDataset('fashion-mnist', 'train', { dirs: [{ location: 'system', dir: FASHION_DIR }] });
    assert.equal(ds.labels.length, 60000);
    assert.deepEqual(ds.itemShape, [28, 28, 1]);
    assert.equal(ds.classes[0], 'T-shirt/top');
    const raw = gunzipSync(await readFile(join(FASHION_DIR, 'train-labels-idx1-ubyte.gz')));
    const counts = new Array(10).fill(0);
    for (let i = 8; i < raw.length; i++) counts[raw[i]!]++;
    assert.deepEqual(counts, new Array(10).fill(6000));
    const got = new Array(10).fill(0);
    for (const l of ds.labels) got[l]++;
    assert.deepEqual(got, counts);
    assert.equal(ds.source.detail?.checksum, 'same-content');
    const info = await datasetInfo('fashion-mnist', { dirs: [{ location: 'system', dir: FASHION_DIR }], verify: true });
    assert.deepEqual([...info.splits.train.files, ...info.splits.test.files].map((f) => f.verification), new Array(4).fill('same-content'));
  });
});

test('fetch finds a verified copy already on the search path (the Debian package) and downloads nothing', async (t) => {
  if (!existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')) {
    t.skip('needs the Debian package dataset-fashion-mnist (absent)');
    return;
  }
  const home = await mkdtemp(join(tmpdir(), 'lp-home-'));
  // An unreachable mirror: any download attempt would fail the call.
  const got = await fetchDataset('fashion-mnist', { split: 'train', env: { HOME: home }, baseUrls: ['http://127.0.0.1:9/'], timeoutMs: 1000 });
  assert.deepEqual(got.map((f) => [f.downloaded, f.path.replace(/\/[^/]+$/, '')]), [[false, '/usr/share/datasets/fashion-mnist'], [false, '/usr/share/datasets/fashion-mnist']]);
  assert.deepEqual(await readdir(home), [], 'no empty cache folder is left behind');
  for (const f of got) assert.equal(f.sha256, createHash('sha256').update(await readFile(f.path)).digest('hex'), f.file);
});
