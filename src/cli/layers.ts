import type { CommandModule } from 'yargs';
import { listLayers } from '../api/layers.js';
import { formatTable } from '../report/table.js';

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
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout' })
      .option('all', { type: 'boolean', default: true, describe: 'list every layer (use --no-all for the default selection only)' })
      .example('$0 layers fmnist-cnn.onnx', 'ONNX (the shipped CNN): every intermediate tensor, * marks the default selection')
      .example('$0 layers fmnist-mlp --json', 'a TF.js layers model (the shipped MLP), machine-readable'),
  handler: async (a) => {
    const info = await listLayers(a.model);
    const layers = a.all ? info.layers : info.layers.filter((l) => l.defaultSelected);
    if (a.json) {
      process.stdout.write(JSON.stringify({ ...info, layers }, null, 2) + '\n');
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
    ]);
    process.stdout.write(formatTable(['#', 'sel', 'id', 'op', 'shape', 'kind'], rows, ['r']) + '\n');
    // Name an op and a kind this model has, so the hint can be pasted as it is.
    const op = (info.layers.find((l) => l.defaultSelected) ?? info.layers[0])?.op ?? 'Relu';
    const kind = info.layers.some((l) => l.kind === 'conv') ? 'conv' : 'dense';
    process.stdout.write(`\n${info.layers.filter((l) => l.defaultSelected).length} default layers (*) of ${info.layers.length}; choose others with --layers id,glob*,op:${op},kind:${kind}\n`);
  },
};
