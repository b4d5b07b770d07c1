import type { Argv, CommandModule } from 'yargs';
import { audit, DEFAULT_BUFFER_PER_CLASS, DEFAULT_METRICS, DEFAULT_PROBE_PER_CLASS, type AuditOptions, type AuditResult } from '../pipeline/audit.js';
import { loadProbeSpec, METRIC_GROUPS, type MetricGroup } from '../probe-spec/probe-spec.js';
import { auditOptionsFromSpec } from '../pipeline/from-spec.js';
import { BASELINE_GROUPS, DEFAULT_BASELINE_DRAWS } from '../pipeline/baseline.js';
import { renderSummary } from '../report/summary.js';
import { MetricCellsFailed, ThresholdFailure, UsageError } from '../errors.js';
import { listFailedCells } from '../report/marks.js';
import { metricGroupsHelp } from '../metrics/catalog.js';
import { didYouMean } from '../util/suggest.js';
import { datasetOptionsFrom, preprocessFrom, samplingFrom, withDataOptions, withInputOptions, type DataArgs, type InputArgs } from './options.js';
import { auditProgress, makeProgress } from './progress.js';
import { parseShard } from '../data/shard.js';
import { auditShard } from '../pipeline/shard.js';
import { useExecutionProvider } from '../runtime/onnx.js';
import { resolveModelArg } from '../shipped.js';
import { applyModelInputs, parseModelInput } from './model-input.js';
import { printJson } from './result-json.js';

export interface AuditArgs extends DataArgs, InputArgs {
  spec?: string;
  model?: string[];
  layers?: string;
  reduce?: string;
  metrics?: string;
  'buffer-per-class'?: number;
  'probe-per-class'?: number;
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
  shard?: string;
  'shard-count'?: number;
  means?: string;
  'execution-provider'?: string;
  input?: string[];
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
  const settings = await Promise.all((a.input ?? []).map(async (text) => {
    const s = parseModelInput(text);
    return { ...s, resolved: await resolveModelArg(s.model) };
  }));
  const perModel = settings.length ? applyModelInputs(models, settings) : models;
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
    models: perModel,
    dataset,
    datasetOptions,
    ...(perClass !== undefined ? { perClass } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(metrics ? { metrics } : {}),
    ...(spec?.reduce ? { reduce: spec.reduce } : {}),
    ...(bufferPerClass !== undefined ? { bufferPerClass } : {}),
    ...((a['probe-per-class'] ?? spec?.probePerClass) !== undefined ? { probePerClass: (a['probe-per-class'] ?? spec?.probePerClass)! } : {}),
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
          .option('input', {
            type: 'string',
            array: true,
            group: 'Model input:',
            describe:
              'one model\'s own input settings, over the shared flags: MODEL:key=value[,key=value…] with keys scale, mean, std, layout, size, channels, reshape (a list runs to the next key=); repeat per model, e.g. --input vit.onnx:mean=0.5,std=0.5',
          })
          .option('metrics', { type: 'string', describe: `comma-separated groups, or all (default ${DEFAULT_METRICS.join(',')}): ${metricGroupsHelp()}` })
          .option('buffer-per-class', { type: 'number', describe: `samples kept per class and layer for ranks, κ, LP, bootstraps (default ${DEFAULT_BUFFER_PER_CLASS})` })
          .option('probe-per-class', { type: 'number', describe: `rows per class the linear probe keeps and cross-fits (default ${DEFAULT_PROBE_PER_CLASS})` })
          .option('baseline', { type: 'string', choices: ['none', 'random-layer'], describe: 'random-layer (default): each layer beside random Gaussian layers of the same width and activation on the same input, with intervals over draws; none: off' })
          .option('baseline-draws', { type: 'number', describe: `random layers drawn per measured layer (default ${DEFAULT_BASELINE_DRAWS}; ≥ 2 for an interval)` })
          .option('baseline-metrics', { type: 'string', describe: `groups measured on the random layers: ${BASELINE_GROUPS.join(', ')} (default: those of --metrics)` })
          .option('ci', { type: 'number', describe: 'bootstrap confidence intervals at this level, e.g. 0.95' })
          .option('fail-under', { type: 'string', array: true, describe: 'exit 3 when metric[@layer] is below the value, e.g. probe_heldout_accuracy=0.9' })
          .option('fail-over', { type: 'string', array: true, describe: 'exit 3 when metric[@layer] is above the value, e.g. compression@last=0.5' })
          .option('out', { alias: 'o', type: 'string', describe: 'run folder (default runs/<time>-audit-<model>)' })
          .option('force', { type: 'boolean', default: false, describe: 'replace an existing run folder' })
          .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}; audit: result is report.json; compare: one record per (model, layer, metric)' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress or table' }),
        { requireDataset: false },
      ),
    )
  ) as unknown as Argv<AuditArgs>;
}

/**
 * After the report is written and printed: exit 3 when a --fail-under/--fail-over gate did not
 * hold (a gate on a failed cell fails); else exit 4 when some metric cells failed (the report has
 * every other number, and each failed cell's reason).
 */
export function throwIfGatesFailed(result: AuditResult): void {
  if (!result.passed) {
    const failed = result.gates.filter((g) => !g.passed);
    throw new ThresholdFailure(`${failed.length} gate${failed.length > 1 ? 's' : ''} failed: ${failed.map((g) => `${g.spec} (${g.detail})`).join('; ')}`);
  }
  const cells = listFailedCells(result.report);
  if (cells.length) {
    const first = cells[0]!;
    throw new MetricCellsFailed(
      `report written, ${cells.length} metric cell${cells.length > 1 ? 's' : ''} failed (first: ${first.model} ${first.layer} ${first.key}: ${first.reason})`,
      `${result.outDir}/summary.txt lists every failed cell and its reason`,
    );
  }
}

export const auditCommand: CommandModule<object, AuditArgs> = {
  command: 'audit [spec]',
  describe: 'per-layer compression, discrimination, collapse, rank and linear probes in one pass',
  builder: (y: Argv) =>
    (auditBuilder(y) as unknown as Argv<AuditArgs>)
      .example('$0 audit -m fmnist-cnn.onnx -d fashion-mnist --per-class 200', 'every default layer of an ONNX CNN (the shipped CNN\'s ONNX twin) on 2,000 test images')
      .example('$0 audit fmnist-zoo', 'the probe spec of the shipped models (probes/fmnist-zoo.yaml), over the whole test set')
      .example('$0 audit -m fmnist-mlp -d fashion-mnist --per-class 100 --fail-under probe_heldout_accuracy=0.75 -o runs/mlp --json > gate.json', 'a CI gate: exit 3 when the last layer is not linearly decodable; the run folder runs/mlp, the report in gate.json')
      .example('$0 audit -m model.onnx -d images/ --size 32,32 --mean 0.5 --std 0.5 --ci 0.95', 'an image folder, normalised input, bootstrap intervals')
      .example('$0 audit -m model.onnx -d fashion-mnist:train --shard env --out shards/', 'one task of a distributed audit (docs/distributed.md); then layerprobe merge shards/*.lpshard')
      .option('shard', { type: 'string', describe: 'process shard i/n (0-based) of the images and write a statistics shard to --out (a folder) instead of a report; `env` reads i and n from a Kubernetes Indexed Job or Slurm array', group: 'Distributed:' })
      .option('shard-count', { type: 'number', describe: 'number of shards, with --shard i or --shard env under a Kubernetes Indexed Job', group: 'Distributed:' })
      .option('execution-provider', { type: 'string', describe: 'onnxruntime execution provider for the forward passes: cpu (default), cuda, … as the installed onnxruntime-node offers' })
      .option('means', { type: 'string', describe: 'phase 2 of a sharded audit: the means file merge wrote from the phase-1 shards', group: 'Distributed:' }) as unknown as Argv<AuditArgs>,
  handler: async (a) => {
    if (a['execution-provider'] !== undefined) useExecutionProvider(a['execution-provider']);
    const opts = await auditOptionsFrom(a);
    if (a.shard !== undefined || a['shard-count'] !== undefined || a.means !== undefined) {
      await runShard(a, opts);
      return;
    }
    const quiet = a.quiet || a.json;
    const progress = auditProgress('audit', quiet);
    const result = await audit({
      ...opts,
      onProgress: progress.onProgress,
      onMetricsProgress: progress.onMetricsProgress,
      onStage: (msg) => {
        if (!quiet) process.stderr.write(msg + '\n');
      },
    }).finally(() => progress.stop());
    if (a.json) printJson('audit', result.report, result.report.warnings);
    else if (!a.quiet) process.stdout.write(renderSummary(result.report) + '\n\n' + `report: ${result.outDir}/report.html (data: report.json, metrics.csv)\n`);
    throwIfGatesFailed(result);
  },
};

/** `audit --shard`: one task of a distributed audit; writes a statistics shard, no report. */
async function runShard(a: AuditArgs, opts: AuditOptions): Promise<void> {
  if (a.shard === undefined) throw new UsageError(`--${a.means !== undefined ? 'means' : 'shard-count'} belongs to a sharded audit: add --shard i/n or --shard env`);
  if (a.json) throw new UsageError('--json prints a report; a shard writes statistics only (merge prints the report)');
  const shard = parseShard(a.shard, a['shard-count'], process.env);
  const quiet = a.quiet;
  let progress: ReturnType<typeof makeProgress> | null = null;
  const res = await auditShard(
    {
      ...opts,
      onProgress: (_model, d, t) => {
        progress ??= makeProgress(`shard ${shard.index}/${shard.count}`, { quiet });
        progress.update(d, t);
      },
      onStage: (msg) => {
        if (!quiet) process.stderr.write(msg + '\n');
      },
    },
    { shard, out: opts.out ?? 'shards', force: opts.force ?? false, ...(a.means !== undefined ? { means: a.means } : {}) },
  ).finally(() => progress?.stop());
  if (!quiet) process.stdout.write(`shard ${shard.index}/${shard.count} (phase ${res.phase}, ${res.images} images): ${res.file}\n`);
}
