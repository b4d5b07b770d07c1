import type { Argv, CommandModule } from 'yargs';
import { audit } from '../pipeline/audit.js';
import { metricRows } from '../report/records.js';
import { renderSummary, fmtNumber } from '../report/summary.js';
import { formatTable } from '../report/table.js';
import { UsageError } from '../errors.js';
import type { Report } from '../report/schema.js';
import { makeProgress } from './progress.js';
import { auditBuilder, auditOptionsFrom, throwIfGatesFailed, type AuditArgs } from './audit.js';

interface Args extends AuditArgs {
  models?: string;
  debiased: boolean;
}

function trendTable(report: Report): string {
  const rows = report.models.map((m) => [
    m.name,
    m.accuracy?.value === null || m.accuracy?.value === undefined ? 'n/a' : (m.accuracy.value * 100).toFixed(2) + '%',
    String(m.layers.length),
    fmtNumber(m.trend?.compressionRatioPerLayer),
    fmtNumber(m.trend?.discriminationSlopePerLayer),
    fmtNumber(m.trend?.probeReachesDepth),
    fmtNumber(m.trend?.separableDepth),
  ]);
  return formatTable(['model', 'accuracy', 'layers', 'C ratio/layer', 'D slope/layer', 'probe ≥95% at depth', 'LP-separable from depth'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']);
}

function ckaBlocks(report: Report): string {
  const s = report.similarity;
  if (!s) return '';
  const models = [...new Set(s.layers.map((l) => l.model))];
  const out: string[] = [`${s.method === 'debiased' ? 'debiased ' : ''}linear CKA on ${s.n} samples (rows × columns = layers by depth)`];
  for (let a = 0; a < models.length; a++) {
    for (let b = a; b < models.length; b++) {
      const ia = s.layers.map((l, i) => (l.model === models[a] ? i : -1)).filter((i) => i >= 0);
      const ib = s.layers.map((l, i) => (l.model === models[b] ? i : -1)).filter((i) => i >= 0);
      out.push('', `${models[a]} × ${models[b]}`);
      out.push(
        formatTable(
          ['', ...ib.map((j) => s.layers[j]!.depth.toFixed(2))],
          ia.map((i) => [`${s.layers[i]!.layer} (${s.layers[i]!.depth.toFixed(2)})`, ...ib.map((j) => fmtNumber(s.matrix[i]![j]))]),
          ['l', ...ib.map(() => 'r' as const)],
        ),
      );
    }
  }
  return out.join('\n');
}

export const compareCommand: CommandModule<object, Args> = {
  command: 'compare [spec]',
  describe: 'audit several models on the same images: overlaid depth curves, trends, CKA between all layers',
  builder: (y: Argv) =>
    (auditBuilder(y) as unknown as Argv<AuditArgs>)
      .option('models', { type: 'string', describe: 'comma-separated model files (or repeat --model)' })
      .option('debiased', { type: 'boolean', default: false, describe: 'debiased CKA (unbiased HSIC estimator)' })
      .example('$0 compare --models models/fmnist-mlp/model.onnx,models/fmnist-cnn/model.onnx -d fashion-mnist --per-class 200', 'MLP vs CNN on the same 2,000 images')
      .example('$0 compare probes/fmnist-zoo.yaml --json > records.json', 'one JSON record per (model, layer, metric)') as unknown as Argv<Args>,
  handler: async (a) => {
    const models = [...(a.model ?? []), ...(a.models ? a.models.split(',').map((s) => s.trim()).filter(Boolean) : [])];
    const opts = await auditOptionsFrom({ ...a, ...(models.length ? { model: models } : {}) }, 'compare');
    if (opts.models.length < 2) throw new UsageError(`compare needs at least two models (got ${opts.models.length})`, 'e.g. --models a.onnx,b.json, or use layerprobe audit for one model');
    const quiet = a.quiet || a.json;
    let progress: ReturnType<typeof makeProgress> | null = null;
    let current = '';
    const result = await audit({
      ...opts,
      similarity: a.debiased ? 'debiased' : 'linear',
      onProgress: (model, d, t) => {
        if (model !== current) {
          progress?.stop();
          progress = makeProgress(`compare ${model}`, { quiet });
          current = model;
        }
        progress?.update(d, t);
      },
      onStage: (msg) => {
        if (!quiet) process.stderr.write(msg + '\n');
      },
    }).finally(() => progress?.stop());
    if (a.json) process.stdout.write(JSON.stringify(metricRows(result.report), null, 2) + '\n');
    else if (!a.quiet) {
      process.stdout.write(
        [renderSummary(result.report), '', trendTable(result.report), '', ckaBlocks(result.report), '', `report: ${result.outDir}/report.html`].join('\n') + '\n',
      );
    }
    throwIfGatesFailed(result);
  },
};
