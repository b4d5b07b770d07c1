import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { ModelInput, PreprocessSpec, RawBatch } from './types.js';

/** ITU-R BT.601 luma, the weights PIL and OpenCV use for RGB → L. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/**
 * Raw batch (HWC, file value range) → model input: resize, channels, /scale, (x−mean)/std,
 * layout, reshape, in that order. Resize and channel mixing are both linear per pixel, so
 * doing channels first (cheaper when reducing to grey) gives the same numbers.
 */
export function preprocess(batch: RawBatch, spec: PreprocessSpec): ModelInput {
  const [n, h0, w0, c0] = batch.shape;
  const c = spec.channels ?? c0;
  if (c !== c0 && !((c0 === 3 && c === 1) || (c0 === 1 && c === 3))) {
    throw new UsageError(`cannot convert ${c0}-channel items to ${c} channels`);
  }
  const [h, w] = spec.size ?? [h0, w0];
  const scale = spec.scale ?? 1;
  const mean = broadcast('mean', spec.mean ?? [0], c);
  const std = broadcast('std', spec.std ?? [1], c);
  if (!(scale > 0) || !Number.isFinite(scale)) throw new UsageError(`preprocess scale must be a positive number, got ${scale}`);
  if (std.some((s) => !(s > 0))) throw new UsageError(`preprocess std must be positive, got [${std.join(', ')}]`);
  const itemShape = layoutShape(spec.layout ?? 'NHWC', h, w, c);
  const outItemShape = spec.reshape ? reshaped(itemShape, spec.reshape) : itemShape;

  const inItem = h0 * w0 * c0;
  const outItem = h * w * c;
  const out = new Float32Array(n * outItem);
  const grey = new Float32Array(h0 * w0 * c);
  for (let k = 0; k < n; k++) {
    const item = batch.x.subarray(k * inItem, (k + 1) * inItem);
    const mixed = c === c0 ? item : convertChannels(item, h0 * w0, c0, c, grey);
    const sized = h === h0 && w === w0 ? mixed : resizeBilinear(mixed, h0, w0, c, h, w);
    const dst = out.subarray(k * outItem, (k + 1) * outItem);
    const nchw = (spec.layout ?? 'NHWC') === 'NCHW';
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < c; ch++) {
        const v = (sized[p * c + ch]! / scale - mean[ch]!) / std[ch]!;
        dst[nchw ? ch * h * w + p : p * c + ch] = v;
      }
    }
  }
  return { data: out, shape: [n, ...outItemShape] };
}

function broadcast(key: 'mean' | 'std', v: readonly number[], c: number): number[] {
  if (v.length === 1) return Array.from({ length: c }, () => v[0]!);
  if (v.length !== c) {
    throw new UsageError(`preprocess ${key} has ${v.length} values but the input has ${c} channel${c === 1 ? '' : 's'}; give ${c === 1 ? 'one value' : `one value or ${c}`}`);
  }
  return [...v];
}

function layoutShape(layout: 'NCHW' | 'NHWC', h: number, w: number, c: number): number[] {
  return layout === 'NCHW' ? [c, h, w] : [h, w, c];
}

/** One -1 entry is inferred, as in numpy/torch reshape. */
function reshaped(from: number[], to: readonly number[]): number[] {
  const count = from.reduce((a, b) => a * b, 1);
  const free = to.filter((d) => d === -1).length;
  const known = to.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const bad = () =>
    new UsageError(`cannot reshape items of shape [${from.join(', ')}] (${count} values) to [${to.join(', ')}]`);
  if (free > 1 || to.some((d) => d !== -1 && (!Number.isInteger(d) || d < 1))) throw bad();
  if (free === 1) {
    if (known === 0 || count % known !== 0) throw bad();
    return to.map((d) => (d === -1 ? count / known : d));
  }
  if (known !== count) throw bad();
  return [...to];
}

function convertChannels(src: Float32Array, pixels: number, from: number, to: number, out: Float32Array): Float32Array {
  if (from === 3 && to === 1) {
    for (let p = 0; p < pixels; p++) out[p] = LUMA[0] * src[3 * p]! + LUMA[1] * src[3 * p + 1]! + LUMA[2] * src[3 * p + 2]!;
  } else {
    for (let p = 0; p < pixels; p++) out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = src[p]!;
  }
  return out;
}

/**
 * Bilinear resize with half-pixel centres (align_corners=false), the convention of
 * torch.nn.functional.interpolate and tf.image.resize: src = (dst+0.5)·in/out − 0.5,
 * clamped at 0, neighbours clamped at the far edge. No antialiasing.
 */
export function resizeBilinear(src: Float32Array, h0: number, w0: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * c);
  const sy = h0 / h;
  const sx = w0 / w;
  for (let y = 0; y < h; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(fy), h0 - 1);
    const y1 = Math.min(y0 + 1, h0 - 1);
    const ly = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5);
      const x0 = Math.min(Math.floor(fx), w0 - 1);
      const x1 = Math.min(x0 + 1, w0 - 1);
      const lx = fx - x0;
      for (let ch = 0; ch < c; ch++) {
        const a = src[(y0 * w0 + x0) * c + ch]!;
        const b = src[(y0 * w0 + x1) * c + ch]!;
        const d = src[(y1 * w0 + x0) * c + ch]!;
        const e = src[(y1 * w0 + x1) * c + ch]!;
        out[(y * w + x) * c + ch] = (1 - ly) * ((1 - lx) * a + lx * b) + ly * ((1 - lx) * d + lx * e);
      }
    }
  }
  return out;
}

const positiveInt = z.number().int().positive();
const schema = z.strictObject({
  size: z.tuple([positiveInt, positiveInt]).optional(),
  channels: z.union([z.literal(1), z.literal(3)]).optional(),
  scale: z.number().positive().finite().optional(),
  mean: z.array(z.number().finite()).min(1).optional(),
  std: z.array(z.number().positive().finite()).min(1).optional(),
  layout: z.enum(['NCHW', 'NHWC']).optional(),
  reshape: z.array(z.number().int().refine((d) => d === -1 || d > 0, 'dimensions must be positive or -1')).min(1).optional(),
});

/**
 * Validates a preprocess block from a probe spec or CLI; errors name the offending key, as
 * `name(key)` gives it (`preprocess: \`size.0\`` by default; the CLI names its flag).
 */
export function parsePreprocess(obj: unknown, name: (key: string) => string = (key) => `preprocess: \`${key}\``): PreprocessSpec {
  const r = schema.safeParse(obj ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    throw new UsageError(
      `preprocess: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => '`' + k + '`').join(', ')}`,
      `allowed keys: ${Object.keys(schema.shape).join(', ')}`,
    );
  }
  const key = issue.path.length ? issue.path.map(String).join('.') : '(preprocess)';
  throw new UsageError(`${name(key)}: ${issue.message}`);
}

/** One line for manifests and reports, e.g. "resize 32x32 bilinear, 1→3 channels, x/255, NCHW". */
export function describePreprocess(spec: PreprocessSpec): string {
  const parts: string[] = [];
  if (spec.size) parts.push(`resize ${spec.size[0]}x${spec.size[1]} bilinear`);
  if (spec.channels) parts.push(spec.channels === 1 ? '1 channel (luma of RGB)' : '3 channels (grey replicated)');
  if (spec.scale !== undefined && spec.scale !== 1) parts.push(`x/${spec.scale}`);
  if (spec.mean || spec.std) parts.push(`(x-[${(spec.mean ?? [0]).join(', ')}])/[${(spec.std ?? [1]).join(', ')}]`);
  // Reshaped items are not images to the model: the layout only says in which order pixels were flattened.
  if (spec.reshape) parts.push(`${(spec.layout ?? 'NHWC') === 'NCHW' ? 'CHW' : 'HWC'} order, reshape [${spec.reshape.join(', ')}]`);
  else parts.push(spec.layout ?? 'NHWC');
  return parts.join(', ');
}
