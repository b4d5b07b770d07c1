/**
 * TF.js activations as ONNX ops, each written so that its last op produces the layer's output
 * (and, for GELU and swish, in the op order the ONNX runner recognises as one activation).
 */
import { RuntimeFailure } from '../../errors.js';
import type { ExportContext, Value } from './onnx-context.js';

export const EXPORTABLE_ACTIVATIONS = [
  'linear', 'relu', 'relu6', 'tanh', 'sigmoid', 'hardSigmoid', 'elu', 'selu', 'softplus', 'softsign',
  'softmax', 'gelu', 'gelu_new', 'swish',
] as const;

/** Apply `activation` to `x` (already in its final layout) and name the result `name`. */
export function activate(ctx: ExportContext, x: Value, activation: string, name: string, layerClass: string): Value {
  const out = (op: string, inputs: string[], attrs = {}): Value => ({ ...x, name: ctx.node(op, inputs, ctx.reserve(name), attrs) });
  const tmp = (op: string, inputs: string[], what: string, attrs = {}): string => ctx.node(op, inputs, ctx.fresh(`${name}/${what}`), attrs);
  switch (activation) {
    case 'linear':
      return ctx.publish(x, name);
    case 'relu':
      return out('Relu', [x.name]);
    case 'relu6':
      return out('Clip', [x.name, ctx.scalar(`${name}/min`, 0), ctx.scalar(`${name}/max`, 6)]);
    case 'tanh':
      return out('Tanh', [x.name]);
    case 'sigmoid':
      return out('Sigmoid', [x.name]);
    case 'hardSigmoid':
      // TF.js: clip(0.2·x + 0.5, 0, 1), ONNX's defaults.
      return out('HardSigmoid', [x.name], { alpha: 0.2, beta: 0.5 });
    case 'elu':
      return out('Elu', [x.name], { alpha: 1 });
    case 'selu':
      return out('Selu', [x.name]);
    case 'softplus':
      return out('Softplus', [x.name]);
    case 'softsign':
      return out('Softsign', [x.name]);
    case 'softmax':
      return out('Softmax', [x.name], { axis: ctx.storedAxis(x, -1) });
    case 'gelu': {
      // x·Φ(x) = x·(1 + erf(x/√2))·0.5, as TF.js computes it.
      const e = tmp('Erf', [tmp('Div', [x.name, ctx.scalar(`${name}/sqrt2`, Math.SQRT2)], 'scaled')], 'erf');
      const p = tmp('Add', [e, ctx.scalar(`${name}/one`, 1)], 'one_plus');
      return out('Mul', [tmp('Mul', [x.name, p], 'x_times'), ctx.scalar(`${name}/half`, 0.5)]);
    }
    case 'gelu_new':
    case 'geluNew': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const cube = tmp('Mul', [tmp('Mul', [x.name, x.name], 'sq'), x.name], 'cube');
      const inner = tmp('Add', [x.name, tmp('Mul', [cube, ctx.scalar(`${name}/c`, 0.044715)], 'cube_c')], 'inner');
      const t = tmp('Tanh', [tmp('Mul', [inner, ctx.scalar(`${name}/k`, Math.sqrt(2 / Math.PI))], 'arg')], 'tanh');
      const p = tmp('Add', [t, ctx.scalar(`${name}/one`, 1)], 'one_plus');
      return out('Mul', [tmp('Mul', [x.name, p], 'x_times'), ctx.scalar(`${name}/half`, 0.5)]);
    }
    case 'swish':
      return out('Mul', [x.name, tmp('Sigmoid', [x.name], 'sigmoid')]);
    default:
      throw new RuntimeFailure(
        `cannot export layer \`${name}\` (${layerClass}) to ONNX: activation \`${activation}\` is not supported`,
        `supported activations: ${EXPORTABLE_ACTIVATIONS.join(', ')}`,
      );
  }
}
