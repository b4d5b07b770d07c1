import type { CommandModule } from 'yargs';
import { extract } from '../pipeline/extract.js';
import { defaultRunDir } from '../report/run-folder.js';
import { modelDisplayName } from '../pipeline/prepare.js';
import { datasetOptionsFrom, preprocessFrom, samplingFrom, withDataOptions, withInputOptions, type DataArgs, type InputArgs } from './options.js';
import { makeProgress } from './progress.js';
import { printJson } from './result-json.js';

interface Args extends DataArgs, InputArgs {
  model: string;
  layers?: string;
  reduce: string;
  out?: string;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

export const extractCommand: CommandModule<object, Args> = {
  command: 'extract',
  describe: 'write hidden-layer activations to .npy files (streamed batch by batch)',
  builder: (y) =>
    withInputOptions(
      withDataOptions(
        y
          .option('model', { alias: 'm', type: 'string', demandOption: true, describe: 'model.onnx, TF.js model.json, a folder holding one, or a shipped model (fmnist-mlp, fmnist-cnn.onnx, …)' })
          .option('layers', { alias: 'l', type: 'string', describe: "layer ids, globs, op:Relu, kind:conv, 'default' or 'all' (comma-separated)" })
          .option('reduce', { type: 'string', default: 'auto', describe: 'flatten | gap | cls | mean-token | project:K | auto[:cap] (default auto, as in audit: flatten unless the layer is wider than the cap)' })
          .option('out', { alias: 'o', type: 'string', describe: 'output folder (default runs/<time>-<model>)' })
          .option('force', { type: 'boolean', default: false, describe: 'replace an existing output folder' })
          .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}, result {outDir, manifest}' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress output' }),
      ),
    )
      .example('$0 extract -m fmnist-cnn.onnx -d fashion-mnist --per-class 100 -o acts', 'default layers of the shipped CNN (ONNX) on 1,000 Fashion-MNIST images')
      .example('$0 extract -m fmnist-cnn -d fashion-mnist --per-class 100 --layers kind:conv --reduce gap -o acts-gap', 'global-average-pooled conv maps of a TF.js CNN')
      .example("python3 -c \"import numpy; print(numpy.load('acts/labels.npy').shape)\"", 'the files are plain .npy (docs/pytorch.md: reading them from numpy and pandas)'),
  handler: async (a) => {
    const progress = makeProgress('extract', { quiet: a.quiet || a.json });
    const out = a.out ?? defaultRunDir(`extract-${modelDisplayName(a.model)}`);
    const result = await extract({
      model: a.model,
      dataset: a.dataset,
      datasetOptions: datasetOptionsFrom(a),
      ...samplingFrom(a),
      ...(a.layers ? { layers: a.layers } : {}),
      reduce: a.reduce,
      preprocess: preprocessFrom(a),
      batchSize: a['batch-size'] ?? 64,
      out,
      force: a.force,
      command: process.argv.slice(2).join(' '),
      onProgress: (d, t) => progress.update(d, t),
    }).finally(() => progress.stop());
    if (a.json) {
      printJson('extract', { outDir: result.outDir, manifest: result.manifest });
      return;
    }
    const m = result.manifest.models[0]!;
    const secs = result.timings.totalMs / 1000;
    if (!a.quiet) {
      process.stderr.write(
        `extracted ${m.layers.length} layers × ${result.manifest.dataset.selectedItems} images in ${secs.toFixed(1)} s ` +
          `(${(result.manifest.dataset.selectedItems / secs).toFixed(0)} img/s; forward ${(result.timings.forwardMs / 1000).toFixed(1)} s)\n`,
      );
    }
    process.stdout.write(result.outDir + '\n');
  },
};
