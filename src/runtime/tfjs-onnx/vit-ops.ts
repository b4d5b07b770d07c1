/**
 * ONNX converters for layerprobe's ViT layers (src/runtime/tfjs-layers/vit-layers.ts), op for op the
 * same computation: a change to one side must be made to the other, and test/export.test.ts
 * compares every layer's output between the two.
 */
import { BLOCK_WEIGHTS, DEFAULT_LN_EPSILON, VIT_LAYER_CLASSES } from '../tfjs-layers/vit-layers.js';
import { activate } from './activations.js';
import { cfgNumber, unsupported, weight, type Converter, type LayerInput } from './layer-converters.js';
import type { ExportContext, Value } from './onnx-context.js';

function one(l: LayerInput): Value {
  if (l.inputs.length !== 1) throw unsupported(l.layer, `expected one input, got ${l.inputs.length}`);
  const x = l.inputs[0]!;
  if (x.shape.length !== 3) throw unsupported(l.layer, `expected tokens [N,T,D], got rank ${x.shape.length}`);
  return x;
}

const classToken: Converter = (ctx, l) => {
  const x = one(l);
  const name = l.layer.name;
  const tok = weight(l, 'token');
  const d = tok.shape[2]!;
  // [N,1,D] from the runtime batch size: Shape(x)[0:1] ++ [1, D].
  const n = ctx.node('Slice', [ctx.node('Shape', [x.name], ctx.fresh(`${name}/shape`)), ctx.ints(`${name}/zero`, [0]), ctx.ints(`${name}/one`, [1])], ctx.fresh(`${name}/batch`));
  const shape = ctx.node('Concat', [n, ctx.ints(`${name}/token_dims`, [1, d])], ctx.fresh(`${name}/token_shape`), { axis: 0 });
  const tiled = ctx.node('Expand', [ctx.floats(`${name}/token`, tok.data, tok.shape), shape], ctx.fresh(`${name}/tokens`));
  return { name: ctx.node('Concat', [tiled, x.name], ctx.reserve(name), { axis: 1 }), shape: l.outShape, nchw: false };
};

const positionEmbedding: Converter = (ctx, l) => {
  const x = one(l);
  const pos = weight(l, 'embedding');
  return { name: ctx.node('Add', [x.name, ctx.floats(`${l.layer.name}/embedding`, pos.data, pos.shape)], ctx.reserve(l.layer.name)), shape: l.outShape, nchw: false };
};

const classTokenSelect: Converter = (ctx, l) => {
  const x = one(l);
  const idx = ctx.fresh(`${l.layer.name}/index`);
  ctx.initializers.push({ name: idx, data: BigInt64Array.of(0n), dims: [] });
  return { name: ctx.node('Gather', [x.name, idx], ctx.reserve(l.layer.name), { axis: 1 }), shape: l.outShape, nchw: false };
};

const transformerBlock: Converter = (ctx: ExportContext, l) => {
  const x = one(l);
  const name = l.layer.name;
  const d = x.shape[2];
  if (typeof d !== 'number') throw unsupported(l.layer, 'unknown token width');
  const heads = cfgNumber(l, 'numHeads');
  const eps = cfgNumber(l, 'epsilon', DEFAULT_LN_EPSILON);
  const dh = d / heads;
  const w = Object.fromEntries(
    BLOCK_WEIGHTS.map((k) => {
      const v = weight(l, k);
      return [k, ctx.floats(`${name}/${k}`, v.data, v.shape)];
    }),
  ) as Record<(typeof BLOCK_WEIGHTS)[number], string>;
  const t = (what: string): string => ctx.fresh(`${name}/${what}`);
  const dense = (v: string, k: (typeof BLOCK_WEIGHTS)[number], b: (typeof BLOCK_WEIGHTS)[number], what: string): string =>
    ctx.node('Add', [ctx.node('MatMul', [v, w[k]], t(`${what}/matmul`)), w[b]], t(what));
  const ln = (v: string, g: (typeof BLOCK_WEIGHTS)[number], b: (typeof BLOCK_WEIGHTS)[number], what: string): string =>
    ctx.node('LayerNormalization', [v, w[g], w[b]], t(what), { axis: -1, epsilon: eps });
  const headsShape = ctx.ints(`${name}/heads_shape`, [0, 0, heads, dh]);
  // [N,T,D] → [N,H,T,dh] (perm 0,2,1,3), or [N,H,dh,T] for the keys (perm 0,2,3,1).
  const split = (v: string, perm: number[], what: string): string =>
    ctx.node('Transpose', [ctx.node('Reshape', [v, headsShape], t(`${what}/heads`))], t(what), { perm });

  const h = ln(x.name, 'ln1_gamma', 'ln1_beta', 'ln1');
  const q = split(dense(h, 'q_kernel', 'q_bias', 'q'), [0, 2, 1, 3], 'q_t');
  const kT = split(dense(h, 'k_kernel', 'k_bias', 'k'), [0, 2, 3, 1], 'k_t');
  const v = split(dense(h, 'v_kernel', 'v_bias', 'v'), [0, 2, 1, 3], 'v_t');
  const scores = ctx.node('Mul', [ctx.node('MatMul', [q, kT], t('qk')), ctx.scalar(`${name}/scale`, 1 / Math.sqrt(dh))], t('scores'));
  const attn = ctx.node('Softmax', [scores], t('attention'), { axis: -1 });
  const ctxT = ctx.node('Transpose', [ctx.node('MatMul', [attn, v], t('context'))], t('context_t'), { perm: [0, 2, 1, 3] });
  const merged = ctx.node('Reshape', [ctxT, ctx.ints(`${name}/merge_shape`, [0, 0, d])], t('merged'));
  const x1 = ctx.node('Add', [x.name, dense(merged, 'o_kernel', 'o_bias', 'attn_out')], t('residual_1'));
  const h2 = ln(x1, 'ln2_gamma', 'ln2_beta', 'ln2');
  const fc1 = dense(h2, 'fc1_kernel', 'fc1_bias', 'fc1');
  const g = activate(ctx, { name: fc1, shape: [null, x.shape[1] ?? null, null], nchw: false }, 'gelu', `${name}/gelu`, l.layer.getClassName());
  const fc2 = dense(g.name, 'fc2_kernel', 'fc2_bias', 'fc2');
  return { name: ctx.node('Add', [x1, fc2], ctx.reserve(name)), shape: l.outShape, nchw: false };
};

export const VIT_CONVERTERS: Record<string, Converter> = {
  [VIT_LAYER_CLASSES.classToken]: classToken,
  [VIT_LAYER_CLASSES.positionEmbedding]: positionEmbedding,
  [VIT_LAYER_CLASSES.transformerBlock]: transformerBlock,
  [VIT_LAYER_CLASSES.classTokenSelect]: classTokenSelect,
};
