import type { CommandModule } from 'yargs';
import { listLayers } from '../api/layers.js';
import { formatTable } from '../report/table.js';
import { printJson } from './result-json.js';

/**
 * The PyTorch module an ONNX tensor came from, where the exporter kept it: torch.onnx.export names
 * tensors `/<scope>/…/<module>/<Op>_output_<k>` (e.g. `/features/features.3/Relu_output_0` →
 * `features.3`), so the last scope is the module's qualified name. Null for other names.
 */
export function torchModuleOf(id: string): string | null {
  const m = /^\/(?:[^/]+\/)*?([^/]+)\/[A-Za-z][A-Za-z0-9]*(?:_\d+)?_output_\d+$/.exec(id);
  return m ? m[1]! : null;
}

interface Args {
  model: string;
  json: boolean;
  all: boolean;
}

export const layersCommand: CommandModule<object, Args> = {
  command: 'layers <model>',
  describe: 'list the probe-able layers of a model (ONNX or TF.js)',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'model.onnx, a TF.js model.json, a folder holding one, or a shipped model (fmnist-mlp, fmnist-cnn, fmnist-vit; add .onnx for the ONNX twin)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}, result the model and its layers' })
      .option('all', { type: 'boolean', default: true, describe: 'list every layer (use --no-all for the default selection only)' })
      .example('$0 layers fmnist-cnn.onnx', 'ONNX (the shipped CNN): every intermediate tensor, * marks the default selection')
      .example('$0 layers fmnist-mlp --json', 'a TF.js layers model (the shipped MLP), machine-readable'),
  handler: async (a) => {
    const info = await listLayers(a.model);
    const chosen = a.all ? info.layers : info.layers.filter((l) => l.defaultSelected);
    const withModules = info.format === 'onnx' && chosen.some((l) => torchModuleOf(l.id) !== null);
    const layers = withModules ? chosen.map((l) => ({ ...l, module: torchModuleOf(l.id) })) : chosen;
    if (a.json) {
      printJson('layers', { ...info, layers });
      return;
    }
    process.stdout.write(`${info.path}  (${info.format}, ${info.backend}, input [${info.inputShape.map((d) => d ?? 'N').join(',')}])\n\n`);
    const rows = layers.map((l) => [
      String(l.index),
      l.defaultSelected ? '*' : l.isOutput ? 'out' : '',
      l.id,
      l.op,
      `[${l.shape.map((d) => d ?? 'N').join(',')}]`,
      l.kind,
      ...(withModules ? [torchModuleOf(l.id) ?? ''] : []),
    ]);
    // A PyTorch export keeps module names in its tensor names: show them, so `--layers` can be
    // written from the module a user knows (`--layers "/fc1_relu/*"`).
    process.stdout.write(formatTable(['#', 'sel', 'id', 'op', 'shape', 'kind', ...(withModules ? ['module (PyTorch)'] : [])], rows, ['r']) + '\n');
    // Name an op and a kind this model has, so the hint can be pasted as it is.
    const op = (info.layers.find((l) => l.defaultSelected) ?? info.layers[0])?.op ?? 'Relu';
    const kind = info.layers.some((l) => l.kind === 'conv') ? 'conv' : 'dense';
    process.stdout.write(`\n${info.layers.filter((l) => l.defaultSelected).length} default layers (*) of ${info.layers.length}; choose others with --layers id,glob*,op:${op},kind:${kind}\n`);
  },
};
