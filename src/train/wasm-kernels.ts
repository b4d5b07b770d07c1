/**
 * Training kernels for the TF.js wasm backend. tfjs-node cannot be installed offline and the
 * pure-JS cpu backend trains the reference CNN at ≈1.3 images/s; stock wasm cannot train it at
 * all (no Conv2DBackpropFilter). Registered here, all built from kernels wasm already has:
 *   Conv2DBackpropFilter, Conv2DBackpropInput  → the XNNPACK Conv2D (below);
 *   BatchMatMul with transposes                → Transpose + plain BatchMatMul;
 *   Tile                                       → broadcasting Add of zeros;
 *   MaxPoolGrad                                → a loop over the wasm heap;
 *   and the Tile gradient (any backend)        → one reshape + sum.
 * With them the reference CNN trains at ≈490 images/s on one core and the ViT at ≈300.
 * test/train-kernels.test.ts checks each against the cpu backend.
 *
 * Conv2DBackpropFilter (NHWC): dW[kh,kw,ci,co] = Σ_{n,h,w} x[n, h·s+kh−pt, w·s+kw−pl, ci]·dy[n,h,w,co].
 * Take x transposed to [ci,H,W,n] as the image (batch ci, channels n) and dy transposed to
 * [h',w',n,co] as the filter, with dilation = stride and the forward pass's padding; the result
 * [ci,kh',kw',co] (kh' ≥ kh: the excess rows are ones the forward pass never reached) is sliced to
 * [ci,kh,kw,co] and transposed to [kh,kw,ci,co].
 *
 * Conv2DBackpropInput (NHWC): dx[n,i,j,ci] = Σ dy[n,h,w,co]·W[i+pt−h·s, j+pl−w·s, ci, co]. With dy
 * dilated by the stride (zeros between rows/columns), that is a stride-1 correlation of the
 * dilated dy with W flipped in space and transposed to [kh,kw,co,ci], padded by kh−1−pt on top.
 * (wasm's own Conv2DBackpropInput is a scalar loop, ≈10× slower than this.)
 */
import type * as tfTypes from '../runtime/tf-types.js';
import type { Tf } from '../runtime/backend.js';

type TensorInfo = tfTypes.TensorInfo;
type KernelFunc = tfTypes.KernelFunc;
type Backend = Parameters<KernelFunc>[0]['backend'];
type NamedAttrMap = tfTypes.NamedAttrMap;
type Shape4 = [number, number, number, number];

interface Disposable {
  disposeData(dataId: object, force?: boolean): boolean;
}

function hasDispose(b: Backend): b is Backend & Disposable {
  return typeof (b as Partial<Disposable>).disposeData === 'function';
}

/**
 * Calls the backend's own kernels and frees the intermediates. The wasm backend reference-counts
 * storage (Reshape and identity Transpose share it), so every intermediate is released once,
 * aliases included, and only the returned tensor keeps its reference.
 */
class KernelCalls {
  private readonly made: TensorInfo[] = [];
  constructor(
    private readonly tf: Tf,
    private readonly backendName: string,
    private readonly backend: Backend,
  ) {}

  call(kernel: string, inputs: Record<string, TensorInfo>, attrs: object): TensorInfo {
    const cfg = this.tf.getKernel(kernel, this.backendName);
    if (!cfg) throw new Error(`backend ${this.backendName} has no ${kernel} kernel`);
    const out = cfg.kernelFunc({ inputs, backend: this.backend, attrs: attrs as NamedAttrMap });
    if (Array.isArray(out)) throw new Error(`${kernel} returned several tensors`);
    this.made.push(out);
    return out;
  }

  finish(keep: TensorInfo): TensorInfo {
    if (hasDispose(this.backend)) for (const t of this.made) if (t !== keep) this.backend.disposeData(t.dataId);
    return keep;
  }
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

export function conv2dBackpropFilterKernel(tf: Tf, backendName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs;
    if (!x || !dy || !attrs) throw new Error('Conv2DBackpropFilter needs x, dy and attributes');
    const a = attrs as unknown as tfTypes.Conv2DBackpropFilterAttrs;
    if (a.dataFormat === 'NCHW') throw new Error(`Conv2DBackpropFilter on ${backendName} supports NHWC only`);
    const [kh, kw, ci, co] = a.filterShape;
    const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
    const [sh, sw] = pair(a.strides);
    const { top, bottom, left, right } = info.padInfo;
    const k = new KernelCalls(tf, backendName, backend);
    const xT = k.call('Transpose', { x }, { perm: [3, 1, 2, 0] });
    const dyT = k.call('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
    let g = k.call('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [sh, sw] });
    if (g.shape[1] !== kh || g.shape[2] !== kw) g = k.call('Slice', { x: g }, { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] });
    return k.finish(k.call('Transpose', { x: g }, { perm: [1, 2, 0, 3] }));
  };
}

export function conv2dBackpropInputKernel(tf: Tf, backendName: string, fallback: KernelFunc | null): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs;
    if (!dy || !filter || !attrs) throw new Error('Conv2DBackpropInput needs dy, filter and attributes');
    const a = attrs as unknown as tfTypes.Conv2DBackpropInputAttrs;
    if (a.dataFormat === 'NCHW') {
      if (fallback) return fallback(args);
      throw new Error(`Conv2DBackpropInput on ${backendName} supports NHWC only`);
    }
    const [n, h, w, ci] = a.inputShape;
    const [kh, kw] = filter.shape as Shape4;
    const co = dy.shape[3]!;
    const info = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as Shape4, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
    const [sh, sw] = pair(a.strides);
    const [oh, ow] = [dy.shape[1]!, dy.shape[2]!];
    const k = new KernelCalls(tf, backendName, backend);
    let d = dy;
    if (sh > 1 || sw > 1) {
      // Zeros after every row/column: [n,oh,1,ow,1,co] padded to [n,oh,sh,ow,sw,co].
      const r = k.call('Reshape', { x: dy }, { shape: [n, oh, 1, ow, 1, co] });
      const p = k.call('PadV2', { x: r }, { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 });
      d = k.call('Reshape', { x: p }, { shape: [n, oh * sh, ow * sw, co] });
    }
    const flipped = k.call('Reverse', { x: filter }, { dims: [0, 1] });
    const wT = k.call('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    // Rows past H come out only when the dilated dy is longer than needed; they are cut below.
    const bottom = Math.max(0, h + kh - 1 - d.shape[1]! - top);
    const right = Math.max(0, w + kw - 1 - d.shape[2]! - left);
    const pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
    let g = k.call('Conv2D', { x: d, filter: wT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] });
    if (g.shape[1] !== h || g.shape[2] !== w) g = k.call('Slice', { x: g }, { begin: [0, 0, 0, 0], size: [n, h, w, ci] });
    return k.finish(g);
  };
}

/**
 * BatchMatMul with transposeA/transposeB: the wasm kernel takes a slow scalar path for those
 * (≈1 GFLOP/s against ≈10 without), and every matmul gradient asks for one. An explicit
 * Transpose followed by the plain product is an order of magnitude faster.
 */
export function batchMatMulKernel(tf: Tf, backendName: string, original: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { a, b } = inputs;
    const t = (attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!a || !b || (!t.transposeA && !t.transposeB)) return original(args);
    const k = new KernelCalls(tf, backendName, backend);
    const swapLast = (x: TensorInfo): TensorInfo => {
      const r = x.shape.length;
      const perm = Array.from({ length: r }, (_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
      return k.call('Transpose', { x }, { perm });
    };
    const a2 = t.transposeA ? swapLast(a) : a;
    const b2 = t.transposeB ? swapLast(b) : b;
    const out = original({ inputs: { a: a2, b: b2 }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    if (Array.isArray(out)) throw new Error('BatchMatMul returned several tensors');
    return k.finish(out);
  };
}

/**
 * Tile as a broadcasting Add of zeros: the wasm Tile kernel walks the output element by element
 * (≈9 ms to tile a LayerNormalization scale to [64,17,64]); XNNPACK's broadcast Add does it in
 * well under one. x + 0 is x exactly, so only dtypes Add cannot take go to the original kernel.
 */
export function tileKernel(tf: Tf, backendName: string, original: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x;
    const reps = (attrs as unknown as { reps?: number[] } | undefined)?.reps;
    if (!x || !reps || x.dtype !== 'float32' || reps.length !== x.shape.length) return original(args);
    const k = new KernelCalls(tf, backendName, backend);
    const xs = k.call('Reshape', { x }, { shape: x.shape.flatMap((s) => [1, s]) });
    const zeros = k.call('Fill', {}, { shape: reps.flatMap((r) => [r, 1]), value: 0, dtype: 'float32' });
    const sum = k.call('Add', { a: xs, b: zeros }, {});
    return k.finish(k.call('Reshape', { x: sum }, { shape: x.shape.map((s, i) => s * reps[i]!) }));
  };
}

/** The part of the wasm backend's own API that the JS kernel below uses (TF.js 4.x BackendWasm). */
interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function isHeapBackend(b: Backend): b is Backend & HeapBackend {
  const o = b as Partial<HeapBackend>;
  return typeof o.makeOutput === 'function' && typeof o.typedArrayFromHeap === 'function';
}

/** TF 'same' padding before the first row/column (the extra one goes after the last). */
function padBefore(size: number, out: number, k: number, s: number): number {
  return Math.floor(Math.max((out - 1) * s + k - size, 0) / 2);
}

/**
 * MaxPoolGrad (NHWC, 'valid' or 'same' padding). The wasm kernel is a generic scalar loop
 * (≈23 ms for a 64×26×26×32 map) that also breaks ties differently from TF; composing kernels
 * does not help (wasm's broadcasting Equal is slower still), but a plain loop over the wasm heap
 * takes a few ms. As in TF (and the cpu backend), each window's gradient goes to its first
 * maximum in row-major order; padded cells never win. Numeric padding uses the original kernel.
 */
export function maxPoolGradKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, input: x } = inputs;
    const a = (attrs ?? {}) as { filterSize?: number | [number, number]; strides?: number | [number, number]; pad?: unknown };
    if (!dy || !x || x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape.length !== 4 || !isHeapBackend(backend)) return original(args);
    if (a.filterSize === undefined || a.strides === undefined || (a.pad !== 'valid' && a.pad !== 'same')) return original(args);
    const [p, q] = pair(a.filterSize);
    const [sp, sq] = pair(a.strides);
    const [n, h, w, c] = x.shape as Shape4;
    const [oh, ow] = [dy.shape[1]!, dy.shape[2]!];
    const top = a.pad === 'same' ? padBefore(h, oh, p, sp) : 0;
    const left = a.pad === 'same' ? padBefore(w, ow, q, sq) : 0;
    const out = backend.makeOutput([n, h, w, c], 'float32');
    // Views only after the allocation: growing the heap detaches earlier ones.
    const dx = backend.typedArrayFromHeap(out) as Float32Array;
    const xv = backend.typedArrayFromHeap(x) as Float32Array;
    const g = backend.typedArrayFromHeap(dy) as Float32Array;
    dx.fill(0);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < oh; i++) {
        const r0 = Math.max(0, i * sp - top);
        const r1 = Math.min(h, i * sp - top + p);
        for (let j = 0; j < ow; j++) {
          const c0 = Math.max(0, j * sq - left);
          const c1 = Math.min(w, j * sq - left + q);
          const o = ((b * oh + i) * ow + j) * c;
          for (let ch = 0; ch < c; ch++) {
            let best = -Infinity;
            let at = -1;
            for (let r = r0; r < r1; r++) {
              const row = (b * h + r) * w;
              for (let col = c0; col < c1; col++) {
                const idx = (row + col) * c + ch;
                const v = xv[idx]!;
                if (v > best || at < 0) {
                  best = v;
                  at = idx;
                }
              }
            }
            if (at >= 0) dx[at] = dx[at]! + g[o + ch]!;
          }
        }
      }
    }
    return out;
  };
}

/**
 * Gradient of Tile as one reshape and one sum: dy viewed as [r0,s0,r1,s1,…] summed over the
 * r axes. TF.js's own adds one slice per repetition, thousands of kernel calls per step for a
 * broadcast class token or a LayerNormalization (which tiles its scale to the input shape).
 */
function registerTileGradient(tf: Tf): void {
  tf.registerGradient({
    kernelName: 'Tile',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const reps = (attrs as unknown as { reps: number[] }).reps;
      const g = Array.isArray(dy) ? dy[0]! : dy;
      return {
        x: () => {
          const shape = x!.shape;
          const split = shape.flatMap((s, i) => [reps[i]!, s]);
          const axes = shape.map((_, i) => 2 * i);
          return tf.sum(tf.reshape(g, split), axes);
        },
      };
    },
  });
}

const registered = new Set<string>();

function replaceKernel(tf: Tf, backendName: string, kernelName: string, make: (original: KernelFunc | null) => KernelFunc): void {
  const original = tf.getKernel(kernelName, backendName);
  if (original) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc: make(original?.kernelFunc ?? null) });
}

/**
 * Register the training kernels on `backendName` (default wasm) and the Tile gradient;
 * idempotent. Other backends keep their own kernels (tfjs-node has native ones, cpu is exact
 * but slow). Results agree with the original kernels to float rounding (test/train-kernels).
 */
export function registerTrainingKernels(tf: Tf, backendName = 'wasm'): void {
  if (registered.has(backendName)) return;
  registered.add(backendName);
  registerTileGradient(tf);
  replaceKernel(tf, backendName, 'Conv2DBackpropInput', (orig) => conv2dBackpropInputKernel(tf, backendName, orig));
  replaceKernel(tf, backendName, 'Conv2DBackpropFilter', () => conv2dBackpropFilterKernel(tf, backendName));
  for (const [name, make] of [
    ['BatchMatMul', batchMatMulKernel],
    ['Tile', tileKernel],
  ] as const) {
    const orig = tf.getKernel(name, backendName);
    if (orig) replaceKernel(tf, backendName, name, () => make(tf, backendName, orig.kernelFunc));
  }
  const pool = tf.getKernel('MaxPoolGrad', backendName);
  if (pool) replaceKernel(tf, backendName, 'MaxPoolGrad', () => maxPoolGradKernel(pool.kernelFunc));
}
