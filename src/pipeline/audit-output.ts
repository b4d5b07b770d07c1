/**
 * The audit's run folder: the report assembled from every model's run, checked against its schema
 * and the gates, and written atomically with its manifest, summary, CSVs and HTML. A single-process
 * audit and `merge` of shards both end here, so they write the same folder.
 */
import path from 'node:path';
import { RuntimeFailure, errorMessage } from '../errors.js';
import { writeReportHtml } from '../report/html.js';
import { createRunFolder, defaultRunDir, writeFileAtomic } from '../report/run-folder.js';
import { baseManifest, describeDataset, type ManifestModel } from '../report/manifest.js';
import { REPORT_SCHEMA, reportSchema, type ModelReport, type Report } from '../report/schema.js';
import { evaluateGates, type Gate } from '../report/gates.js';
import { modelViews } from '../report/findings.js';
import { renderSummary } from '../report/summary.js';
import type { MetricGroup } from '../probe-spec/probe-spec.js';
import { ckaMatrix, CKA_DEFINITION, type CkaMethod } from '../metrics/cka.js';
import { metricsCsv, similarityCsv } from '../report/records.js';
import type { SampleMatrix } from '../stats/sample-buffer.js';
import { BASELINE_GROUPS, DEFAULT_BASELINE_DRAWS } from './baseline.js';
import { modelDisplayName, type PreparedData } from './prepare.js';
import { type AuditOptions, type AuditResult, DEFAULT_BUFFER_PER_CLASS, DEFAULT_PROBE_PER_CLASS, baselineOn } from './audit-options.js';

export interface ModelRun {
  report: ModelReport;
  manifest: ManifestModel;
  /** Buffered samples per layer, kept only when similarity is wanted. */
  samples: SampleMatrix[];
}

/** CKA between every pair of layers of every model; the buffers hold the same items in the same order. */
export async function layerSimilarity(runs: ModelRun[], method: CkaMethod): Promise<NonNullable<Report['similarity']>> {
  const entries = runs.flatMap((r) => r.report.layers.map((l, i) => ({ model: r.report.name, layer: l.id, depth: l.depth, m: r.samples[i]! })));
  const ref = entries[0]!.m.ids;
  for (const e of entries) {
    if (e.m.n !== ref.length || e.m.ids.some((id, i) => id !== ref[i])) {
      throw new RuntimeFailure(`internal: sample buffers of ${e.model} ${e.layer} hold other items than the first layer's; CKA needs the same samples`);
    }
  }
  const matrix = await ckaMatrix(entries.map((e) => ({ X: e.m.X, n: e.m.n, d: e.m.d })), method);
  return {
    method,
    definition: CKA_DEFINITION[method],
    n: ref.length,
    layers: entries.map(({ model, layer, depth }) => ({ model, layer, depth })),
    matrix: matrix.map((row) => row.map((v) => (Number.isFinite(v) ? v : null))),
  };
}

/**
 * The run folder of an audit: created before `produce` computes the models' runs (so a bad --out
 * fails before any work), then the report, its checks and every file written atomically. Both a
 * single-process audit and `merge` of shards end here, so they write the same folder.
 */
export async function writeAuditRun(opts: AuditOptions, data: PreparedData, metrics: MetricGroup[], gates: Gate[], classWarnings: string[], produce: (warnings: string[]) => Promise<ModelRun[]>): Promise<AuditResult> {
  const folder = await createRunFolder(opts.out ?? defaultRunDir(`audit-${opts.name ?? modelDisplayName(opts.models[0]!.path)}`), {
    force: opts.force ?? false,
    inputs: [...opts.models.map((m) => m.path), opts.dataset],
    unique: opts.out === undefined,
  });
  try {
    const warnings: string[] = [...classWarnings];
    const runs = await produce(warnings);
    const similarity = opts.similarity ? await layerSimilarity(runs, opts.similarity) : undefined;
    const dataset = describeDataset(data.ref, data.dataset, data.indices, data.sampling);
    const manifest = baseManifest(opts.command ?? 'audit', data.seed, dataset, runs.map((r) => r.manifest));
    const draft: Report = {
      schema: REPORT_SCHEMA,
      createdAt: manifest.createdAt,
      command: manifest.command,
      seed: data.seed,
      versions: manifest.versions,
      dataset: { ref: data.ref, name: dataset.name, classes: dataset.classes, selectedItems: dataset.selectedItems, perClassCounts: dataset.perClassCounts },
      options: {
        metrics,
        bufferPerClass: opts.bufferPerClass ?? DEFAULT_BUFFER_PER_CLASS,
        ...(metrics.includes('probe') ? { probePerClass: opts.probePerClass ?? DEFAULT_PROBE_PER_CLASS } : {}),
        ...(opts.similarity ? { similarity: opts.similarity } : {}),
        ...(baselineOn(opts) ? { baseline: 'random-layer', baselineDraws: opts.baselineDraws ?? DEFAULT_BASELINE_DRAWS, baselineMetrics: (opts.baselineMetrics ?? metrics).filter((g) => BASELINE_GROUPS.includes(g)) } : {}),
        ...(opts.ci !== undefined ? { ci: opts.ci } : {}),
        sampling: data.sampling,
        batchSize: opts.batchSize ?? 64,
      },
      models: runs.map((r) => ({ ...r.report, views: modelViews(r.report, dataset.classes) })),
      ...(similarity ? { similarity } : {}),
      warnings,
    };
    const gateResults = evaluateGates(draft, gates);
    if (gateResults.length) draft.gates = gateResults;
    const parsed = reportSchema.safeParse(draft);
    if (!parsed.success) throw new RuntimeFailure(`internal: report does not match its schema: ${parsed.error.issues[0]?.message ?? ''}`);
    const report = parsed.data;
    await writeFileAtomic(path.join(folder.workDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await writeFileAtomic(path.join(folder.workDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    await writeFileAtomic(path.join(folder.workDir, 'summary.txt'), renderSummary(report) + '\n');
    await writeFileAtomic(path.join(folder.workDir, 'metrics.csv'), metricsCsv(report));
    const simCsv = similarityCsv(report);
    if (simCsv) await writeFileAtomic(path.join(folder.workDir, 'similarity.csv'), simCsv);
    try {
      await writeReportHtml(folder.workDir, report);
    } catch (e) {
      // The numbers are the product; a page that fails to render must not cost the run.
      opts.onStage?.(`warning: report.html could not be rendered (${errorMessage(e)}); rerun \`layerprobe report\` on the run folder`);
    }
    const outDir = await folder.commit();
    return { outDir, report, gates: gateResults, passed: gateResults.every((g) => g.passed) };
  } catch (e) {
    await folder.abort();
    throw e;
  }
}
