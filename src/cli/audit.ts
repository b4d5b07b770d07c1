import type { Argv, CommandModule } from 'yargs';
import { audit, DEFAULT_BUFFER_PER_CLASS, type AuditOptions, type AuditResult } from '../pipeline/audit.js';
import { loadProbeSpec, METRIC_GROUPS, type MetricGroup } from '../spec/probe-spec.js';
import { auditOptionsFromSpec } from '../pipeline/from-spec.js';
import { BASELINE_GROUPS, DEFAULT_BASELINE_DRAWS } from '../pipeline/baseline.js';
import { renderSummary } from '../report/summary.js';
import { ThresholdFailure, UsageError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { datasetOptionsFrom, preprocessFrom, samplingFrom, withDataOptions, withInputOptions, type DataArgs, type InputArgs } from './options.js';
import { makeProgress } from './progress.js';

export interface AuditArgs extends DataArgs, InputArgs {
  spec?: string;
  model?: string[];
  layers?: string;
  reduce?: string;
  metrics?: string;
  'buffer-per-class'?: number;
  baseline?: string;
  'baseline-draws'?: number;
  'baseline-metrics'?: string;
  ci?: number;
  'fail-under'?: string[];
  'fail-over'?: string[];
  out?: string;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

export function parseMetrics(text: string | undefined): MetricGroup[] | undefined {
  if (text === undefined) return undefined;
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.includes('all')) return [...METRIC_GROUPS];
  for (const m of items) {
    if (!(METRIC_GROUPS as readonly string[]).includes(m)) {
      throw new UsageError(`unknown metric group \`${m}\`; ${didYouMean(m, METRIC_GROUPS)}`.replace(/; $/, ''), `choose from ${METRIC_GROUPS.join(', ')}, all`);
    }
  }
  return items as MetricGroup[];
}

/** The probe spec's options (if any) with the flags laid over them; flags win. */
export async function auditOptionsFrom(a: AuditArgs, commandName = 'audit'): Promise<AuditOptions> {
  const spec = a.spec ? auditOptionsFromSpec(await loadProbeSpec(a.spec)) : undefined;
  const preprocess = preprocessFrom(a);
  const layers = a.layers ? { layers: a.layers } : {};
  const reduceFlag = a.reduce ? { reduce: a.reduce } : {};
  const models: AuditOptions['models'] = a.model?.length
    ? a.model.map((p) => ({ path: p, preprocess, ...layers, ...reduceFlag }))
    : (spec?.models ?? []).map((m) => ({ ...m, preprocess: { ...m.preprocess, ...preprocess }, ...layers, ...reduceFlag }));
  if (models.length === 0) throw new UsageError(`${commandName} needs --model (or a probe spec file)`, `e.g. layerprobe ${commandName} --model model.onnx --dataset fashion-mnist`);
  // A --dataset flag replaces the spec's dataset whole: its split, labels and sampling belong to it.
  const fromSpec = spec && !a.dataset ? spec : undefined;
  const dataset = a.dataset ?? fromSpec?.dataset;
  if (!dataset) throw new UsageError(`${commandName} needs --dataset (or a probe spec file)`);
  const sampling = samplingFrom(a);
  const datasetOptions = { ...fromSpec?.datasetOptions, ...datasetOptionsFrom(a) };
  const metrics = parseMetrics(a.metrics) ?? spec?.metrics;
  const bufferPerClass = a['buffer-per-class'] ?? spec?.bufferPerClass;
  const ci = a.ci ?? spec?.ci;
  const baseline = (a.baseline ?? spec?.baseline) as AuditOptions['baseline'];
  const baselineDraws = a['baseline-draws'] ?? spec?.baselineDraws;
  const baselineMetrics = (a['baseline-metrics']?.trim() === 'all' ? [...BASELINE_GROUPS] : parseMetrics(a['baseline-metrics'])) ?? spec?.baselineMetrics;
  const perClass = sampling.perClass ?? fromSpec?.perClass;
  const limit = sampling.limit ?? fromSpec?.limit;
  // The spec's seed stays even under --dataset: it seeds the split and the probes too.
  const seed = sampling.seed ?? spec?.seed;
  return {
    models,
    dataset,
    datasetOptions,
    ...(perClass !== undefined ? { perClass } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(metrics ? { metrics } : {}),
    ...(spec?.reduce ? { reduce: spec.reduce } : {}),
    ...(bufferPerClass !== undefined ? { bufferPerClass } : {}),
    ...(ci !== undefined ? { ci } : {}),
    ...(baseline ? { baseline } : {}),
    ...(baselineDraws !== undefined ? { baselineDraws } : {}),
    ...(baselineMetrics ? { baselineMetrics } : {}),
    batchSize: a['batch-size'] ?? spec?.batchSize ?? 64,
    ...(a.out ? { out: a.out } : {}),
    force: a.force,
    failUnder: a['fail-under'] ?? [],
    failOver: a['fail-over'] ?? [],
    ...(spec?.name ? { name: spec.name } : {}),
    command: [commandName, ...process.argv.slice(3)].join(' '),
  };
}

/** Options shared by audit and compare. */
export function auditBuilder(y: Argv): Argv<AuditArgs> {
  return (
    withInputOptions(
      withDataOptions(
        y
          .positional('spec', { type: 'string', describe: 'probe spec (YAML or JSON) naming dataset, models, layers, metrics' })
          .option('model', { alias: 'm', type: 'string', array: true, describe: 'model file(s): .onnx, TF.js model.json, or a folder' })
          .option('layers', { alias: 'l', type: 'string', describe: "layer ids, globs, op:Relu, kind:conv, 'default' or 'all'" })
          .option('reduce', { type: 'string', describe: 'flatten | gap | cls | mean-token | project:K | auto[:cap] (default auto)' })
          .option('metrics', { type: 'string', describe: `comma-separated groups: ${METRIC_GROUPS.join(', ')}, all (default geometry,collapse,rank,probe)` })
          .option('buffer-per-class', { type: 'number', describe: `samples kept per class and layer for probes, ranks, bootstraps (default ${DEFAULT_BUFFER_PER_CLASS})` })
          .option('baseline', { type: 'string', choices: ['none', 'random-layer'], describe: 'random-layer (default): each layer beside random Gaussian layers of the same width and activation on the same input, with intervals over draws; none: off' })
          .option('baseline-draws', { type: 'number', describe: `random layers drawn per measured layer (default ${DEFAULT_BASELINE_DRAWS}; ≥ 2 for an interval)` })
          .option('baseline-metrics', { type: 'string', describe: `groups measured on the random layers: ${BASELINE_GROUPS.join(', ')} (default: those of --metrics)` })
          .option('ci', { type: 'number', describe: 'bootstrap confidence intervals at this level, e.g. 0.95' })
          .option('fail-under', { type: 'string', array: true, describe: 'exit 3 when metric[@layer] is below the value, e.g. probe_heldout_accuracy=0.9' })
          .option('fail-over', { type: 'string', array: true, describe: 'exit 3 when metric[@layer] is above the value, e.g. compression@last=0.5' })
          .option('out', { alias: 'o', type: 'string', describe: 'run folder (default runs/<time>-audit-<model>)' })
          .option('force', { type: 'boolean', default: false, describe: 'replace an existing run folder' })
          .option('json', { type: 'boolean', default: false, describe: 'print report.json on stdout' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress or table' }),
        { requireDataset: false },
      ),
    )
  ) as unknown as Argv<AuditArgs>;
}

/** Exit 3 after the report is written and printed, when a --fail-under/--fail-over gate did not hold. */
export function throwIfGatesFailed(result: AuditResult): void {
  if (result.passed) return;
  const failed = result.gates.filter((g) => !g.passed);
  throw new ThresholdFailure(`${failed.length} gate${failed.length > 1 ? 's' : ''} failed: ${failed.map((g) => `${g.spec} (${g.detail})`).join('; ')}`);
}

export const auditCommand: CommandModule<object, AuditArgs> = {
  command: 'audit [spec]',
  describe: 'per-layer compression, discrimination, collapse, rank and linear probes in one pass',
  builder: (y: Argv) =>
    (auditBuilder(y) as unknown as Argv<AuditArgs>)
      .example('$0 audit -m ../shared/assets/models/mnist-cnn-deepeverest.onnx -d mnist --per-class 200', 'geometry of every default layer of an ONNX CNN')
      .example('$0 audit probes/fmnist-zoo.yaml', 'the probe spec of the shipped models')
      .example('$0 audit -m model.json -d fashion-mnist --fail-under probe_heldout_accuracy=0.85 --json', 'a CI gate: exit 3 when the last layer is not linearly decodable')
      .example('$0 audit -m model.onnx -d images/ --size 32,32 --mean 0.5 --std 0.5 --ci 0.95', 'an image folder, normalised input, bootstrap intervals') as unknown as Argv<AuditArgs>,
  handler: async (a) => {
    const opts = await auditOptionsFrom(a);
    const quiet = a.quiet || a.json;
    let progress: ReturnType<typeof makeProgress> | null = null;
    let current = '';
    const result = await audit({
      ...opts,
      onProgress: (model, d, t) => {
        if (model !== current) {
          progress?.stop();
          progress = makeProgress(`audit ${model}`, { quiet });
          current = model;
        }
        progress?.update(d, t);
      },
      onStage: (msg) => {
        if (!quiet) process.stderr.write(msg + '\n');
      },
    }).finally(() => progress?.stop());
    if (a.json) process.stdout.write(JSON.stringify(result.report, null, 2) + '\n');
    else if (!a.quiet) process.stdout.write(renderSummary(result.report) + '\n\n' + `report: ${result.outDir}/report.html (data: report.json, metrics.csv)\n`);
    throwIfGatesFailed(result);
  },
};
