/**
 * The fuzzer's formats: for each, a small valid base case (built here from fixed seeds, or a model
 * shipped in models/ and the shared LeNet), how to mutate it, how to open it in-process through
 * the library, and which real CLI command reads it. A case is a set of files (relative path →
 * bytes) so that mutation happens in memory and (format, seed, index) names a mutant exactly.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { openDataset } from '../../src/data/open.js';
import { openModel } from '../../src/runtime/open.js';
import { OnnxGraphBuilder } from '../../src/runtime/onnx-build.js';
import { mkdirSteps } from '../../src/util/mkdir-steps.js';
import { Rng } from '../../src/util/rng.js';
import { BYTE_MUTATORS, csvMutate, idxHeaderMutate, jsonMutate, npyHeaderMutate, onnxMutate, type Mutator } from './mutate.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const FORMATS = ['idx', 'npy', 'csv', 'images', 'onnx', 'tfjs'] as const;
export type FormatName = (typeof FORMATS)[number];
export type Case = Map<string, Uint8Array>;

/** The model the dataset formats are fed to in the CLI (28×28×1 input). */
const DATA_MODEL = path.join(ROOT, 'models/fmnist-mlp/model.onnx');

export interface Format {
  name: FormatName;
  bases(): Promise<Case[]>;
  mutate(rng: Rng, c: Case): Case;
  /** Opens the case through the library and reads what a command would. */
  open(dir: string): Promise<void>;
  /** CLI arguments reading the case (with a small budget), writing to `out` where it writes. */
  cli(dir: string, out: string): string[];
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const N = 20;
const K = 4;

function pixels(seed: number, n: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

function idxFile(code: number, dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = code;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

function npyFile(descr: string, shape: number[], data: Uint8Array): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  dict += ' '.repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(head);
  head[6] = 1;
  head.writeUInt16LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}

const labelsOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i % K);

/** Mutate one file of the case with one of `mutators` (chosen per file by `choose`). */
function mutateOne(rng: Rng, c: Case, choose: (file: string, rng: Rng) => Mutator): Case {
  const out = new Map(c);
  const file = pick(rng, [...c.keys()]);
  out.set(file, choose(file, rng)(rng, c.get(file)!));
  return out;
}

async function readAll(ref: string, labels?: string): Promise<void> {
  const ds = await openDataset(ref, labels ? { labels } : {});
  const n = Math.min(64, ds.labels.length);
  await ds.read(Array.from({ length: n }, (_, i) => i));
}

const extract = (dataset: string, out: string): string[] => ['extract', '-m', DATA_MODEL, '-d', dataset, '--limit', '12', '--seed', '1', '-o', out, '--quiet'];

const idx: Format = {
  name: 'idx',
  async bases() {
    const img = idxFile(0x08, [N, 28, 28], pixels(1, N * 784));
    const lab = idxFile(0x08, [N], labelsOf(N));
    return [
      new Map([['t10k-images-idx3-ubyte.gz', gzipSync(img)], ['t10k-labels-idx1-ubyte.gz', gzipSync(lab)]]),
      new Map([['t10k-images-idx3-ubyte', img], ['t10k-labels-idx1-ubyte', lab]]),
    ];
  },
  mutate(rng, c) {
    return mutateOne(rng, c, (file, r) => {
      const inner = r.next() < 0.6 ? pick(r, [idxHeaderMutate, ...BYTE_MUTATORS]) : pick(r, BYTE_MUTATORS);
      if (!file.endsWith('.gz') || r.next() < 0.3) return inner;
      // Mutate inside the gzip layer, sometimes as a bomb: the same header, far more data.
      return (rr, bytes) => {
        let content: Uint8Array;
        try {
          content = gunzipSync(bytes);
        } catch {
          return inner(rr, bytes);
        }
        if (rr.next() < 0.15) return gzipSync(Buffer.concat([content, Buffer.alloc(pick(rr, [1, 4096, 64 << 20]))]), { level: 1 });
        return gzipSync(inner(rr, content));
      };
    });
  },
  async open(dir) {
    const images = readdirSync(dir).find((f) => f.includes('images'))!;
    await readAll(path.join(dir, images));
  },
  cli: (dir, out) => extract(path.join(dir, readdirSync(dir).find((f) => f.includes('images'))!), out),
};

const npy: Format = {
  name: 'npy',
  async bases() {
    const lab = new BigInt64Array(N).map((_, i) => BigInt(i % K));
    return [
      new Map([['x.npy', npyFile('|u1', [N, 28, 28], pixels(2, N * 784))], ['x-labels.npy', npyFile('<i8', [N], new Uint8Array(lab.buffer))]]),
      new Map([['x.npy', npyFile('<f4', [N, 28, 28, 1], new Uint8Array(Float32Array.from(pixels(3, N * 784), (v) => v / 255).buffer))], ['x-labels.npy', npyFile('|u1', [N], labelsOf(N))]]),
    ];
  },
  mutate: (rng, c) => mutateOne(rng, c, (_f, r) => (r.next() < 0.5 ? npyHeaderMutate : pick(r, BYTE_MUTATORS))),
  open: (dir) => readAll(path.join(dir, 'x.npy')),
  cli: (dir, out) => extract(path.join(dir, 'x.npy'), out),
};

const csv: Format = {
  name: 'csv',
  async bases() {
    const px = pixels(4, N * 784);
    const rows = Array.from({ length: N }, (_, i) => `${i % K},${Array.from(px.subarray(i * 784, (i + 1) * 784)).join(',')}`);
    return [new Map([['data.csv', Buffer.from(rows.join('\n') + '\n')]]), new Map([['data.csv', Buffer.from(['label,' + Array.from({ length: 784 }, (_, j) => `p${j}`).join(','), ...rows].join('\r\n'))]])];
  },
  mutate: (rng, c) => mutateOne(rng, c, (_f, r) => (r.next() < 0.7 ? csvMutate : pick(r, BYTE_MUTATORS))),
  open: (dir) => readAll(path.join(dir, 'data.csv')),
  cli: (dir, out) => extract(path.join(dir, 'data.csv'), out),
};

/** A PNG that claims 30000×30000 pixels in its header (a pixel-count bomb). */
function bigPngHeader(png: Uint8Array): Uint8Array {
  const out = Uint8Array.from(png);
  const v = new DataView(out.buffer);
  v.setUint32(16, 30000, false);
  v.setUint32(20, 30000, false);
  return out;
}

const images: Format = {
  name: 'images',
  async bases() {
    const c: Case = new Map();
    for (const cls of ['cat', 'dog', 'eel']) {
      for (let k = 0; k < 3; k++) {
        const raw = pixels(10 + c.size, 28 * 28);
        c.set(`imgs/${cls}/${k}.png`, await sharp(Buffer.from(raw), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer());
      }
    }
    return [c];
  },
  mutate(rng, c) {
    const op = rng.int(5);
    const out = new Map(c);
    const files = [...c.keys()];
    if (op <= 1) return mutateOne(rng, c, (_f, r) => pick(r, BYTE_MUTATORS));
    if (op === 2) {
      // Rename a class folder to something odd.
      const from = pick(rng, ['cat', 'dog', 'eel']);
      const to = pick(rng, ['.hidden', ' ', 'é'.repeat(60), '%2e%2e', '-1', '4294967299', 'x'.repeat(200), 'DOG']);
      return new Map([...c].map(([k, v]) => [k.replace(`imgs/${from}/`, `imgs/${to}/`), v]));
    }
    if (op === 3) {
      out.set(`imgs/${pick(rng, ['cat', 'dog', 'new'])}/${pick(rng, ['z.png', 'z.jpg', 'z.webp'])}`, pick(rng, [new Uint8Array(0), Buffer.from('{"not":"an image"}'), bigPngHeader(c.get(files[0]!)!)]));
      return out;
    }
    out.delete(pick(rng, files));
    return out;
  },
  open: (dir) => readAll(path.join(dir, 'imgs')),
  cli: (dir, out) => extract(path.join(dir, 'imgs'), out),
};

const onnx: Format = {
  name: 'onnx',
  async bases() {
    const rng = new Rng(5);
    const w = (n: number) => Float32Array.from({ length: n }, () => rng.normal() * 0.1);
    const g = new OnnxGraphBuilder();
    g.input('x', ['N', 1, 8, 8]);
    g.initializer('k', w(3 * 9), [3, 1, 3, 3]).initializer('kb', w(3), [3]);
    g.initializer('shape', new BigInt64Array([-1n, 108n]), [2]);
    g.initializer('w', w(108 * 4), [108, 4]).initializer('b', w(4), [4]);
    g.node('Conv', ['x', 'k', 'kb'], ['c'], { kernel_shape: [3, 3] });
    g.node('Relu', ['c'], ['r']);
    g.node('Reshape', ['r', 'shape'], ['f']);
    g.node('Gemm', ['f', 'w', 'b'], ['logits']);
    g.output('logits', ['N', 4]);
    const cases: Case[] = [new Map([['model.onnx', g.toBytes()]])];
    const lenet = path.join(ROOT, '../shared/assets/models/mnist-cnn-deepeverest.onnx');
    if (existsSync(lenet)) cases.push(new Map([['model.onnx', readFileSync(lenet)]]));
    return cases;
  },
  mutate: (rng, c) => mutateOne(rng, c, (_f, r) => (r.next() < 0.5 ? onnxMutate : pick(r, BYTE_MUTATORS))),
  async open(dir) {
    const m = await openModel(path.join(dir, 'model.onnx'));
    await m.dispose();
  },
  cli: (dir) => ['layers', path.join(dir, 'model.onnx')],
};

const tfjs: Format = {
  name: 'tfjs',
  async bases() {
    const mlp = path.join(ROOT, 'models/fmnist-mlp');
    const cases: Case[] = [new Map([['model.json', readFileSync(path.join(mlp, 'model.json'))], ['weights.bin', readFileSync(path.join(mlp, 'weights.bin'))]])];
    for (const name of ['lenet-keras-layers', 'lenet-tf-graph']) {
      const d = path.join(ROOT, '../shared/assets/models', name);
      if (existsSync(d)) cases.push(new Map(readdirSync(d).map((f) => [f, readFileSync(path.join(d, f))])));
    }
    return cases;
  },
  mutate: (rng, c) => mutateOne(rng, c, (file, r) => (file.endsWith('.json') ? (r.next() < 0.75 ? jsonMutate : pick(r, BYTE_MUTATORS)) : pick(r, [BYTE_MUTATORS[0]!, BYTE_MUTATORS[1]!, BYTE_MUTATORS[2]!]))),
  async open(dir) {
    const m = await openModel(path.join(dir, 'model.json'));
    await m.dispose();
  },
  cli: (dir) => ['layers', path.join(dir, 'model.json')],
};

export const FORMAT: Record<FormatName, Format> = { idx, npy, csv, images, onnx, tfjs };

const baseCache = new Map<FormatName, Promise<Case[]>>();

/** Mutant `index` of `format` under `seed`: a pure function of the three. */
export async function mutant(format: FormatName, seed: number, index: number): Promise<Case> {
  const f = FORMAT[format];
  if (!baseCache.has(format)) baseCache.set(format, f.bases());
  const bases = await baseCache.get(format)!;
  const rng = new Rng((seed * 1_000_003 + index * 7919 + FORMATS.indexOf(format)) >>> 0);
  let c = bases[index % bases.length]!;
  // Mostly one mutation; sometimes stacked, to get past a first check into a second.
  const rounds = rng.next() < 0.75 ? 1 : 2 + rng.int(3);
  for (let r = 0; r < rounds; r++) c = f.mutate(rng, c);
  return c;
}

export async function writeCase(dir: string, c: Case): Promise<void> {
  for (const [rel, bytes] of c) {
    const file = path.join(dir, rel);
    await mkdirSteps(path.dirname(file));
    await writeFile(file, bytes);
  }
}
