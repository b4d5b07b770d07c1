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
    scale: z.number().positive().optional(),
    mean: numberList.optional(),
    std: numberList.optional(),
    layout: z.enum(['NCHW', 'NHWC']).optional(),
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
    channels: z.union([z.literal(1), z.literal(3)]).optional(),
    reshape: z.array(z.number().int().positive()).optional(),
  })
  .strict();

const modelSchema = z
  .object({
    name: z.string().min(1).optional(),
    path: z.string().min(1),
    input: inputSchema.optional(),
    layers: z.union([z.string(), z.array(z.string())]).optional(),
    reduce: z.string().optional(),
  })
  .strict();

const specSchema = z
  .object({
    dataset: z
      .object({
        name: z.string().min(1),
        split: z.enum(['train', 'test']).optional(),
        perClass: z.number().int().positive().optional(),
        limit: z.number().int().positive().optional(),
        seed: z.number().int().optional(),
        labels: z.string().optional(),
      })
      .strict(),
    models: z.array(modelSchema).min(1),
    metrics: z.array(z.enum(METRIC_GROUPS)).optional(),
    reduce: z.string().optional(),
    bufferPerClass: z.number().int().positive().optional(),
    ci: z.number().gt(0).lt(1).optional(),
    batchSize: z.number().int().positive().optional(),
    baseline: z.enum(['none', 'random-layer']).optional(),
    baselineDraws: z.number().int().positive().optional(),
    baselineMetrics: z.array(z.enum(METRIC_GROUPS)).optional(),
    name: z.string().optional(),
  })
  .strict();

export type ProbeSpec = z.infer<typeof specSchema>;
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
