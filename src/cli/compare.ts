import type { Argv, CommandModule } from 'yargs';
import { audit } from '../pipeline/audit.js';
import { metricRows } from '../report/records.js';
import { renderSummary } from '../report/summary.js';
import { UsageError } from '../errors.js';
import { auditProgress } from './progress.js';
import { auditBuilder, auditOptionsFrom, throwIfGatesFailed, type AuditArgs } from './audit.js';
import { printJson } from './result-json.js';

interface Args extends AuditArgs {
  models?: string;
  debiased: boolean;
}

export const compareCommand: CommandModule<object, Args> = {
  command: 'compare [spec]',
  describe: 'audit several models on the same images: overlaid depth curves, trends, CKA between all layers',
  builder: (y: Argv) =>
    (auditBuilder(y) as unknown as Argv<AuditArgs>)
      .option('models', { type: 'string', describe: 'comma-separated model files (or repeat --model)' })
      .option('debiased', { type: 'boolean', default: false, describe: 'debiased CKA (unbiased HSIC estimator)' })
      .example('$0 compare --models fmnist-mlp.onnx,fmnist-cnn.onnx -d fashion-mnist --per-class 200', 'MLP vs CNN (the shipped ONNX twins) on the same 2,000 images')
      .example('$0 compare -m fmnist-mlp -m fmnist-cnn.onnx -d fashion-mnist --per-class 50 --input fmnist-cnn.onnx:scale=255,layout=NHWC', 'each model its own input: --input MODEL:key=value,… (keys of the spec\'s models[].input), e.g. --input vit.onnx:mean=0.5,std=0.5 beside --input resnet.onnx:mean=0.485,0.456,0.406,std=0.229,0.224,0.225')
      .example('$0 compare fmnist-zoo --json > records.json', 'the shipped spec (probes/fmnist-zoo.yaml); result: one JSON record per (model, layer, metric)') as unknown as Argv<Args>,
  handler: async (a) => {
    const models = [...(a.model ?? []), ...(a.models ? a.models.split(',').map((s) => s.trim()).filter(Boolean) : [])];
    const opts = await auditOptionsFrom({ ...a, ...(models.length ? { model: models } : {}) }, 'compare');
    if (opts.models.length < 2) throw new UsageError(`compare needs at least two models (got ${opts.models.length})`, 'e.g. --models a.onnx,b.json, or use layerprobe audit for one model');
    const quiet = a.quiet || a.json;
    const progress = auditProgress('compare', quiet);
    const result = await audit({
      ...opts,
      similarity: a.debiased ? 'debiased' : 'linear',
      onProgress: progress.onProgress,
      onMetricsProgress: progress.onMetricsProgress,
      onStage: (msg) => {
        if (!quiet) process.stderr.write(msg + '\n');
      },
    }).finally(() => progress.stop());
    if (a.json) printJson('compare', metricRows(result.report), result.report.warnings);
    else if (!a.quiet) {
      process.stdout.write([renderSummary(result.report), '', `report: ${result.outDir}/report.html`].join('\n') + '\n');
    }
    throwIfGatesFailed(result);
  },
};
