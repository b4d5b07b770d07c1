/**
 * Kernels the TF.js wasm backend lacks for training, built from kernels it has. Without
 * Conv2DBackpropFilter a conv net cannot train on wasm at all, and the pure-JS cpu backend is
 * two orders of magnitude too slow for Fashion-MNIST; tfjs-node cannot be installed offline.
 *
 * Conv2DBackpropFilter (NHWC): dW[kh,kw,ci,co] = Σ_{n,h,w} x[n, h·s+kh−pt, w·s+kw−pl, ci]·dy[n,h,w,co].
 * That sum is itself a convolution: take x transposed to [ci,H,W,n] as the "image" (batch ci,
 * channels n) and dy transposed to [h',w',n,co] as the "filter", with dilation = stride and the
 * forward pass's padding; the result [ci,kh',kw',co] (kh' ≥ kh, the excess being rows the forward
 * pass never reached) is sliced to [ci,kh,kw,co] and transposed to [kh,kw,ci,co]. XNNPACK runs it.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import type { Tf } from '../runtime/backend.js';

type TensorInfo = tfTypes.TensorInfo;
type KernelFunc = tfTypes.KernelFunc;
type Backend = Parameters<KernelFunc>[0]['backend'];
type NamedAttrMap = tfTypes.NamedAttrMap;

interface Disposable {
  disposeData(dataId: object, force?: boolean): boolean;
}

function hasDispose(b: Backend): b is Backend & Disposable {
  return typeof (b as Partial<Disposable>).disposeData === 'function';
}

function single(out: TensorInfo | TensorInfo[]): TensorInfo {
  if (Array.isArray(out)) throw new Error('expected a single-output kernel');
  return out;
}

/** Wraps the backend's own kernels so intermediate results can be freed as soon as they are used. */
class KernelCalls {
  private readonly made: TensorInfo[] = [];
  constructor(
    private readonly tf: Tf,
    private readonly backendName: string,
    private readonly backend: Backend,
  ) {}

  call(kernel: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo {
    const cfg = this.tf.getKernel(kernel, this.backendName);
    if (!cfg) throw new Error(`backend ${this.backendName} has no ${kernel} kernel`);
    const out = single(cfg.kernelFunc({ inputs, backend: this.backend, attrs }));
    this.made.push(out);
    return out;
  }

  /** Frees every intermediate except `keep` (and anything sharing its storage). */
  release(keep: TensorInfo, inputs: readonly TensorInfo[]): void {
    if (!hasDispose(this.backend)) return;
    const spare = new Set<object>([keep.dataId, ...inputs.map((t) => t.dataId)]);
    for (const t of this.made) {
      if (spare.has(t.dataId)) continue;
      spare.add(t.dataId);
      this.backend.disposeData(t.dataId);
    }
  }
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

export function conv2dBackpropFilterKernel(tf: Tf, backendName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const dy = inputs.dy;
    if (!x || !dy || !attrs) throw new Error('Conv2DBackpropFilter needs x, dy and attributes');
    const a = attrs as unknown as tfTypes.Conv2DBackpropFilterAttrs;
    if (a.dataFormat === 'NCHW') throw new Error(`backend ${backendName} Conv2DBackpropFilter supports NHWC only`);
    const filterShape = a.filterShape;
    const [kh, kw, ci, co] = filterShape;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      'channelsLast',
    );
    const [sh, sw] = pair(a.strides);
    const { top, bottom, left, right } = info.padInfo;
    const calls = new KernelCalls(tf, backendName, backend);
    const xT = calls.call('Transpose', { x }, { perm: [3, 1, 2, 0] });
    const dyT = calls.call('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const conv = calls.call(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: [1, 1],
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: [sh, sw],
      } as unknown as NamedAttrMap,
    );
    let cut = conv;
    if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
      cut = calls.call('Slice', { x: conv }, { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] });
    }
    const out = calls.call('Transpose', { x: cut }, { perm: [1, 2, 0, 3] });
    calls.release(out, [x, dy]);
    return out;
  };
}

/** Register the missing training kernels on `backendName` (default wasm); idempotent. */
export function registerTrainingKernels(tf: Tf, backendName = 'wasm'): void {
  if (tf.getKernel('Conv2DBackpropFilter', backendName)) return;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName,
    kernelFunc: conv2dBackpropFilterKernel(tf, backendName),
  });
}
