import type { CommandModule } from 'yargs';
import { exportOnnx, exportableLayerClasses } from '../export/onnx-export.js';
import { printJson } from './result-json.js';

interface Args {
  model: string;
  to: string;
  out: string;
  force: boolean;
  check: boolean;
  json: boolean;
  quiet: boolean;
}

export const exportCommand: CommandModule<object, Args> = {
  command: 'export <model>',
  describe: 'convert a TF.js layers model to ONNX (opset 17), keeping layer names and the NHWC input',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'TF.js layers model.json, the folder holding it, or a shipped model (fmnist-mlp, fmnist-cnn, fmnist-vit)' })
      .option('to', { type: 'string', choices: ['onnx'], default: 'onnx', describe: 'target format' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'the .onnx file to write' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing file' })
      .option('check', { type: 'boolean', default: true, describe: 'run both formats on random inputs and refuse to write a model that disagrees (--no-check skips)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}, result {out, opset, bytes, layers, maxAbsDiff}' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no messages on stderr' })
      .example('$0 export --to onnx fmnist-cnn --out cnn.onnx', 'ONNX twin of a TF.js model (the shipped CNN); `layerprobe layers cnn.onnx` lists the same layer ids')
      .example('$0 export fmnist-vit --out cnn.onnx --force', 'replace an earlier export (a model folder works too)')
      .epilogue(
        `Supported layers: ${exportableLayerClasses().join(', ')}. Feature maps are NCHW inside the ONNX graph ` +
          '(the input stays NHWC, so one preprocessing feeds both files); each layer output is named like the TF.js layer.',
      ),
  handler: async (a) => {
    const r = await exportOnnx({ model: a.model, out: a.out, force: a.force, check: a.check });
    if (a.json) {
      printJson('export', r);
      return;
    }
    if (!a.quiet) {
      const check = r.maxAbsDiff === undefined ? 'not checked' : `max |ONNX − TF.js| ${r.maxAbsDiff.toExponential(1)} over ${r.layers.length} layers`;
      process.stderr.write(`wrote ONNX opset ${r.opset}, ${(r.bytes / 1024).toFixed(0)} KiB (${check})\n`);
    }
    process.stdout.write(r.out + '\n');
  },
};
