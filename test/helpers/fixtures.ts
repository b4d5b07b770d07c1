/** Fixture builders shared by the CLI and pipeline tests: real files on disk, built from seeds. */
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { OnnxGraphBuilder } from '../../src/runtime/onnx-build.js';
import { Rng } from '../../src/util/rng.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SHARED = path.resolve(ROOT, '../shared/assets');
export const sharedPath = (...p: string[]): string => path.join(SHARED, ...p);
export const hasShared = (...p: string[]): boolean => existsSync(sharedPath(...p));
export const FMNIST_SYSTEM = '/usr/share/datasets/fashion-mnist';

export async function tempDir(prefix = 'lp-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** IDX images [n,h,w] uint8 + labels, gzipped or raw. */
export function idxBytes(images: Uint8Array, n: number, h: number, w: number, labels: Uint8Array): { images: Buffer; labels: Buffer } {
  const ih = Buffer.alloc(16);
  ih.writeUInt32BE(0x00000803, 0);
  ih.writeUInt32BE(n, 4);
  ih.writeUInt32BE(h, 8);
  ih.writeUInt32BE(w, 12);
  const lh = Buffer.alloc(8);
  lh.writeUInt32BE(0x00000801, 0);
  lh.writeUInt32BE(labels.length, 4);
  return { images: Buffer.concat([ih, Buffer.from(images)]), labels: Buffer.concat([lh, Buffer.from(labels)]) };
}

/** A small synthetic 8×8 dataset whose classes differ in mean brightness pattern. */
export function syntheticImages(n: number, k: number, seed = 1, side = 8): { images: Uint8Array; labels: Uint8Array } {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * side * side);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    labels[i] = c;
    for (let p = 0; p < side * side; p++) {
      const base = ((p + c * 7) % (k + 3)) * (200 / (k + 3));
      images[i * side * side + p] = Math.max(0, Math.min(255, Math.round(base + rng.normal() * 20)));
    }
  }
  return { images, labels };
}

export async function writeIdxDataset(dir: string, n: number, k: number, opts: { gzip?: boolean; seed?: number; side?: number } = {}): Promise<{ images: string; labels: string; pixels: Uint8Array; y: Uint8Array }> {
  const side = opts.side ?? 8;
  const { images, labels } = syntheticImages(n, k, opts.seed ?? 1, side);
  const b = idxBytes(images, n, side, side, labels);
  const gz = opts.gzip ?? true;
  const ip = path.join(dir, `t10k-images-idx3-ubyte${gz ? '.gz' : ''}`);
  const lp = path.join(dir, `t10k-labels-idx1-ubyte${gz ? '.gz' : ''}`);
  await mkdir(dir, { recursive: true });
  await writeFile(ip, gz ? gzipSync(b.images) : b.images);
  await writeFile(lp, gz ? gzipSync(b.labels) : b.labels);
  return { images: ip, labels: lp, pixels: images, y: labels };
}

export interface MlpWeights {
  w1: Float32Array; b1: Float32Array; w2: Float32Array; b2: Float32Array; w3: Float32Array; b3: Float32Array;
  dims: [number, number, number, number];
}

export function randomMlp(dims: [number, number, number, number], seed = 3): MlpWeights {
  const rng = new Rng(seed);
  const mat = (r: number, c: number) => Float32Array.from({ length: r * c }, () => rng.normal() / Math.sqrt(r));
  const vec = (c: number) => Float32Array.from({ length: c }, () => rng.normal() * 0.1);
  const [d0, d1, d2, d3] = dims;
  return { w1: mat(d0, d1), b1: vec(d1), w2: mat(d1, d2), b2: vec(d2), w3: mat(d2, d3), b3: vec(d3), dims };
}

/** ONNX MLP: input [N,d0] → Gemm → Relu (h1) → Gemm → Relu (h2) → Gemm (logits). */
export async function writeOnnxMlp(file: string, w: MlpWeights): Promise<void> {
  const [d0, d1, d2, d3] = w.dims;
  const g = new OnnxGraphBuilder();
  g.input('x', ['N', d0]);
  g.initializer('w1', w.w1, [d0, d1]);
  g.initializer('b1', w.b1, [d1]);
  g.initializer('w2', w.w2, [d1, d2]);
  g.initializer('b2', w.b2, [d2]);
  g.initializer('w3', w.w3, [d2, d3]);
  g.initializer('b3', w.b3, [d3]);
  g.node('Gemm', ['x', 'w1', 'b1'], ['z1']);
  g.node('Relu', ['z1'], ['h1']);
  g.node('Gemm', ['h1', 'w2', 'b2'], ['z2']);
  g.node('Relu', ['z2'], ['h2']);
  g.node('Gemm', ['h2', 'w3', 'b3'], ['logits']);
  g.output('logits', ['N', d3]);
  await writeFile(file, g.toBytes());
}

/** Direct float64 forward of the MLP for one input row, returning every hidden layer. */
export function mlpForward(w: MlpWeights, x: ArrayLike<number>): { h1: number[]; h2: number[]; logits: number[] } {
  const [d0, d1, d2, d3] = w.dims;
  const dense = (inp: ArrayLike<number>, W: Float32Array, b: Float32Array, din: number, dout: number, relu: boolean) => {
    const out: number[] = [];
    for (let j = 0; j < dout; j++) {
      let s = b[j]!;
      for (let i = 0; i < din; i++) s += inp[i]! * W[i * dout + j]!;
      out.push(relu ? Math.max(0, s) : s);
    }
    return out;
  };
  const h1 = dense(x, w.w1, w.b1, d0, d1, true);
  const h2 = dense(h1, w.w2, w.b2, d1, d2, true);
  return { h1, h2, logits: dense(h2, w.w3, w.b3, d2, d3, false) };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI entry point in a child process. */
export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/layerprobe.js'), ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: '1', ...opts.env },
    timeout: 300_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
