import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import { openImageFolder } from '../src/data/image-folder.js';
import { openDataset } from '../src/data/open.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'layerprobe-img-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Deterministic pixel pattern so decoded values can be compared exactly. */
function pattern(h: number, w: number, c: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: h * w * c }, (_, i) => (i * 37 + seed * 101) % 256);
}

async function png(path: string, h: number, w: number, c: 1 | 3, seed: number): Promise<Uint8Array> {
  const px = pattern(h, w, c, seed);
  await mkdir(join(path, '..'), { recursive: true });
  const img = sharp(Buffer.from(px), { raw: { width: w, height: h, channels: c } });
  // Without b-w sharp stores a 1-band raw image as an RGB PNG.
  await (c === 1 ? img.toColourspace('b-w') : img).png().toFile(path);
  return px;
}

describe('image folder', () => {
  test('classes sorted, files sorted, PNG decode equals the encoded pixels', async () => {
    const root = join(dir, 'rgb');
    const b1 = await png(join(root, 'zebra', 'b.PNG'), 4, 5, 3, 1);
    const a1 = await png(join(root, 'zebra', 'a.png'), 4, 5, 3, 2);
    const c1 = await png(join(root, 'apple', 'x.png'), 4, 5, 3, 3);
    await writeFile(join(root, 'apple', 'notes.txt'), 'not an image');
    await mkdir(join(root, 'empty'));
    const ds = await openImageFolder(root);
    assert.deepEqual(ds.classes, ['apple', 'zebra']);
    assert.deepEqual(Array.from(ds.labels), [0, 1, 1]);
    assert.deepEqual(ds.itemShape, [4, 5, 3]);
    const batch = await ds.read([2, 0, 1]);
    assert.deepEqual(batch.shape, [3, 4, 5, 3]);
    assert.deepEqual(Array.from(batch.x.subarray(0, 60)), Array.from(b1));
    assert.deepEqual(Array.from(batch.x.subarray(60, 120)), Array.from(c1));
    assert.deepEqual(Array.from(batch.x.subarray(120)), Array.from(a1));
    assert.deepEqual(Array.from(batch.labels), [1, 0, 1]);
    assert.equal(ds.source.kind, 'image-folder');
    const first = ds.source.files[0]!;
    assert.equal(first.path, join(root, 'apple', 'x.png'));
    assert.equal(first.sha256, createHash('sha256').update(await readFile(first.path)).digest('hex'));
    assert.equal(ds.source.detail?.emptyFoldersIgnored, 'empty');
  });

  test('symbolic links to class folders and to images are followed; dangling ones are skipped', async () => {
    const store = join(dir, 'store');
    const px = await png(join(store, 'cats', 'c.png'), 3, 3, 3, 7);
    await png(join(store, 'dog.png'), 3, 3, 3, 8);
    const root = join(dir, 'linked');
    await mkdir(join(root, 'dogs'), { recursive: true });
    await symlink(join(store, 'cats'), join(root, 'cats'));
    await symlink(join(store, 'dog.png'), join(root, 'dogs', 'd.png'));
    await png(join(root, 'dogs', 'e.png'), 3, 3, 3, 9);
    await symlink(join(store, 'missing.png'), join(root, 'dogs', 'gone.png'));
    const ds = await openImageFolder(root);
    assert.deepEqual(ds.classes, ['cats', 'dogs']);
    assert.deepEqual(Array.from(ds.labels), [0, 1, 1]);
    assert.deepEqual(Array.from((await ds.read([0])).x), Array.from(px));
  });

  test('greyscale stays 1 channel; channels forces replication or luma', async () => {
    const root = join(dir, 'grey');
    const g = await png(join(root, 'a', '1.png'), 3, 3, 1, 4);
    const rgb = await png(join(root, 'b', '1.png'), 3, 3, 3, 5);
    const ds = await openImageFolder(root);
    assert.deepEqual(ds.itemShape, [3, 3, 1]);
    const b = await ds.read([0, 1]);
    assert.deepEqual(Array.from(b.x.subarray(0, 9)), Array.from(g));
    const luma = Array.from({ length: 9 }, (_, p) => 0.299 * rgb[3 * p]! + 0.587 * rgb[3 * p + 1]! + 0.114 * rgb[3 * p + 2]!);
    Array.from(b.x.subarray(9)).forEach((v, p) => assert.ok(Math.abs(v - luma[p]!) < 1e-3, `pixel ${p}: ${v} vs ${luma[p]}`));

    const three = await openImageFolder(root, { channels: 3 });
    assert.deepEqual(three.itemShape, [3, 3, 3]);
    const t = await three.read([0]);
    assert.deepEqual(Array.from(t.x), Array.from(g).flatMap((v) => [v, v, v]));
  });

  test('size resizes every item; a uniform image stays uniform', async () => {
    const root = join(dir, 'sizes');
    for (const [cls, v] of [['a', 40], ['b', 200]] as const) {
      await mkdir(join(root, cls), { recursive: true });
      await sharp({ create: { width: 7, height: 5, channels: 3, background: { r: v, g: v, b: v } } }).png().toFile(join(root, cls, 'u.png'));
    }
    // A differently sized image in the same folder is resized to the first one's size.
    await sharp({ create: { width: 3, height: 9, channels: 3, background: { r: 90, g: 90, b: 90 } } }).png().toFile(join(root, 'b', 'v.png'));
    const ds = await openImageFolder(root, { size: [8, 6] });
    assert.deepEqual(ds.itemShape, [8, 6, 3]);
    const b = await ds.read([0, 1, 2]);
    assert.ok(b.x.subarray(0, 144).every((v) => v === 40));
    assert.ok(b.x.subarray(144, 288).every((v) => v === 200));
    assert.ok(b.x.subarray(288).every((v) => v === 90));
    const natural = await openImageFolder(root, { channels: 1 });
    assert.deepEqual(natural.itemShape, [5, 7, 1]);
    assert.ok((await natural.read([2])).x.every((v) => v === 90));
  });

  test('one class → UsageError; no images → UsageError', async () => {
    await png(join(dir, 'one', 'a', '1.png'), 2, 2, 1, 0);
    await assert.rejects(openImageFolder(join(dir, 'one')), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, `image folder ${join(dir, 'one')} has only one class \`a\`; need at least two`);
      return true;
    });
    await mkdir(join(dir, 'none', 'a'), { recursive: true });
    await writeFile(join(dir, 'none', 'a', 'x.txt'), '');
    await assert.rejects(openImageFolder(join(dir, 'none')), (e: unknown) => e instanceof UsageError && e.message.includes('no images'));
  });

  test('undecodable file → RuntimeFailure naming it; directory refs go through openDataset', async () => {
    const root = join(dir, 'broken');
    await png(join(root, 'a', '1.png'), 2, 2, 1, 0);
    await mkdir(join(root, 'b'), { recursive: true });
    await writeFile(join(root, 'b', 'bad.jpg'), Buffer.from('definitely not a jpeg'));
    const ds = await openDataset(root);
    assert.equal(ds.source.kind, 'image-folder');
    await ds.read([0]);
    await assert.rejects(ds.read([1]), (e: unknown) => e instanceof RuntimeFailure && e.message.includes(join(root, 'b', 'bad.jpg')));
  });
});
