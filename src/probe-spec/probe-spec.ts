/**
 * Probe specs (YAML or JSON): which models, which data, which layers, reductions and metrics.
 * Validated with zod so the error names the bad key; relative paths resolve against the spec
 * file's folder, so a spec travels with the models it names.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { listKnownDatasets } from '../data/open.js';
import { METRIC_GROUPS } from '../metrics/catalog.js';

/** The metric groups are the catalogue's (src/metrics/catalog.ts); re-exported for spec readers. */
export { METRIC_GROUPS, type MetricGroup } from '../metrics/catalog.js';

const numberList = z.union([z.number(), z.array(z.number())]).transform((v) => (Array.isArray(v) ? v : [v]));

const inputSchema = z
  .object({
    scale: z.number().positive().optional().describe('divide raw pixel values by this (default 255 for 8-bit data)'),
    mean: numberList.optional().describe('per-channel mean subtracted after scaling: one number or one per channel'),
    std: numberList.optional().describe('per-channel standard deviation divided by after the mean'),
    layout: z.enum(['NCHW', 'NHWC']).optional().describe('model input layout (default: inferred from the input shape)'),
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional().describe('resize images to [H, W]'),
    channels: z.union([z.literal(1), z.literal(3)]).optional().describe('convert images to 1 or 3 channels'),
    reshape: z.array(z.number().int().positive()).optional().describe('per-item input shape, e.g. [784]'),
  })
  .strict()
  .describe("how this model's input is made from the dataset's raw pixels");

const modelSchema = z
  .object({
    name: z.string().min(1).optional().describe('display name (default: the file or folder name)'),
    path: z.string().min(1).describe('model file (.onnx, TF.js model.json) or folder, relative to the spec file'),
    input: inputSchema.optional(),
    layers: z.union([z.string(), z.array(z.string())]).optional().describe("layer ids, globs, op:Relu, kind:conv, 'default' or 'all'"),
    reduce: z.string().optional().describe('flatten | gap | cls | mean-token | project:K | auto[:cap] for this model'),
  })
  .strict();

const specSchema = z
  .object({
    dataset: z
      .object({
        name: z.string().min(1).describe('registry name (fashion-mnist, mnist[:train]) or a path relative to the spec file'),
        split: z.enum(['train', 'test']).optional().describe('split for registry datasets and IDX folders (default test)'),
        perClass: z.number().int().positive().optional().describe('seeded stratified sample: at most this many items per class'),
        limit: z.number().int().positive().optional().describe('at most this many items in all (stratified)'),
        seed: z.number().int().optional().describe('seed for sampling, projections and every random choice (default 0)'),
        labels: z.string().optional().describe('labels file for .npy or IDX images, relative to the spec file'),
      })
      .strict(),
    models: z.array(modelSchema).min(1).describe('the models audited on the same images'),
    metrics: z.array(z.enum(METRIC_GROUPS)).optional().describe('metric groups (default geometry, collapse, rank, probe)'),
    reduce: z.string().optional().describe('default reduction for models that set none (default auto)'),
    bufferPerClass: z.number().int().positive().optional().describe('samples kept per class and layer for ranks, κ, LP and bootstraps'),
    probePerClass: z.number().int().positive().optional().describe("rows per class the linear probe keeps and cross-fits (default 1000)"),
    ci: z.number().gt(0).lt(1).optional().describe('bootstrap confidence level, e.g. 0.95'),
    batchSize: z.number().int().positive().optional().describe('images per forward pass (default 64)'),
    baseline: z.enum(['none', 'random-layer']).optional().describe('random-layer (default) or none'),
    baselineDraws: z.number().int().positive().optional().describe('random layers drawn per measured layer'),
    baselineMetrics: z.array(z.enum(METRIC_GROUPS)).optional().describe('groups measured on the random layers'),
    name: z.string().optional().describe('run name (default: the first model)'),
  })
  .strict();

export type ProbeSpec = z.infer<typeof specSchema>;

/** The `$id` of the probe spec's JSON Schema, beside the report's `layerprobe.report/1`. */
export const PROBE_SPEC_SCHEMA = 'layerprobe.probe-spec/1';

/**
 * The probe spec as JSON Schema (draft 2020-12), generated from the zod schema above so that the
 * two cannot drift: what a spec file may hold as written (a single number where a list is
 * accepted, paths relative to the spec), before parseProbeSpec resolves it.
 */
export function probeSpecJsonSchema(): Record<string, unknown> {
  return { $id: PROBE_SPEC_SCHEMA, ...(z.toJSONSchema(specSchema, { io: 'input' }) as Record<string, unknown>) };
}
export type ProbeSpecModel = z.infer<typeof modelSchema>;

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => '`' + [...issue.path.map(String), k].join('.') + '`').join(', ')}`;
  return `\`${where}\`: ${issue.message}`;
}

/** Parse and validate spec text; `file` is used for messages and to resolve relative paths. */
export function parseProbeSpec(text: string, file: string): ProbeSpec {
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    // The yaml package ends its first line with "at line L, column C:" before a code excerpt.
    const first = errorMessage(e).split('\n')[0]!.replace(/:\s*$/, '');
    throw new UsageError(`probe spec ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${first}`);
  }
  const r = specSchema.safeParse(raw);
  if (!r.success) {
    throw new UsageError(`probe spec ${file}: ${r.error.issues.slice(0, 3).map(describeIssue).join('; ')}`);
  }
  const dir = path.dirname(path.resolve(file));
  const spec = r.data;
  const resolve = (p: string) => (path.isAbsolute(p) ? p : path.resolve(dir, p));
  const known = listKnownDatasets();
  const datasetRef = known.includes(spec.dataset.name.replace(/:(train|test)$/, '')) ? spec.dataset.name : resolve(spec.dataset.name);
  return {
    ...spec,
    dataset: { ...spec.dataset, name: datasetRef, ...(spec.dataset.labels ? { labels: resolve(spec.dataset.labels) } : {}) },
    models: spec.models.map((m) => ({ ...m, path: resolve(m.path) })),
  };
}

export async function loadProbeSpec(file: string): Promise<ProbeSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new UsageError(`probe spec ${file} not found`);
    throw new RuntimeFailure(`cannot read probe spec ${file}: ${errorMessage(e)}`);
  }
  return parseProbeSpec(text, file);
}
