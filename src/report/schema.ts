/**
 * report.json, versioned. The zod schema is the single source of truth: reports are validated
 * before they are written and when they are read back, and `reportJsonSchema()` exports it as
 * JSON Schema for other tools.
 */
import { z } from 'zod';

export const REPORT_SCHEMA = 'layerprobe.report/1';

export const metricSchema = z.object({
  name: z.string(),
  value: z.number().nullable(),
  definition: z.string(),
  ci: z.tuple([z.number(), z.number()]).optional(),
  /** What the value was computed on when that is not exact over all N images at full width. */
  basis: z
    .object({
      n: z.number().int(),
      sampled: z.boolean(),
      dims: z.number().int().optional(),
      width: z.number().int().optional(),
      note: z.string().optional(),
    })
    .optional(),
  /** Why the metric could not be computed for this layer (value is null then). */
  failed: z.string().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
});

export const layerReportSchema = z.object({
  id: z.string(),
  op: z.string(),
  shape: z.array(z.number().nullable()),
  index: z.number().int(),
  /** Position among the selected layers, 0-based, and the same normalised to [0,1]. */
  position: z.number().int(),
  depth: z.number().min(0).max(1),
  reduction: z.string(),
  dim: z.number().int(),
  samples: z.object({ streamed: z.number().int(), buffered: z.number().int() }),
  metrics: z.record(z.string(), metricSchema),
});

export const modelReportSchema = z.object({
  name: z.string(),
  path: z.string(),
  sha256: z.string(),
  format: z.string(),
  backend: z.string(),
  preprocess: z.record(z.string(), z.unknown()),
  /** The model's reduction rule in one line (src/features/reduce.ts), e.g. 'auto: conv maps gap (…), vectors whole'. */
  reductionRule: z.string().optional(),
  /** The largest batch that ran, where the memory budget kept it below the requested --batch-size. */
  batchSize: z.number().int().positive().optional(),
  accuracy: metricSchema.optional(),
  layers: z.array(layerReportSchema),
  /** How the geometry moves with depth; see src/pipeline/trends.ts for the definitions. */
  trend: z
    .object({
      compressionRatioPerLayer: z.number().nullable(),
      discriminationSlopePerLayer: z.number().nullable(),
      probeReachesDepth: z.number().nullable(),
      separableDepth: z.number().nullable(),
      definitions: z.record(z.string(), z.string()),
    })
    .optional(),
  /**
   * What the report's overview says about the model, derived from its layers (src/report/findings.ts):
   * the overview sentences and the hardest class pairs tracked across depth. Absent in reports
   * written before it existed; `layerprobe report` recomputes it from the layers either way.
   */
  views: z
    .object({
      findings: z.array(z.string()),
      hardestPairs: z
        .object({
          /** What a pair's score is: 1 − κ (held-out or in-sample) or the probe's held-out confusion rate. */
          source: z.string(),
          /** The layers with pair scores, in depth order; `scores` follow this order. */
          layers: z.array(z.string()),
          pairs: z.array(z.object({ k: z.number().int(), l: z.number().int(), classes: z.tuple([z.string(), z.string()]), mean: z.number(), scores: z.array(z.number().nullable()), hardestAt: z.array(z.string()) })),
        })
        .nullable(),
    })
    .optional(),
  timings: z.object({
    forwardMs: z.number(),
    reduceMs: z.number(),
    statsMs: z.number(),
    metricsMs: z.number(),
    /** metricsMs split by metric group (and the random-layer baseline), summed over layers. */
    metricsByGroupMs: z.record(z.string(), z.number()).optional(),
    totalMs: z.number(),
  }),
});

export const reportSchema = z.object({
  schema: z.literal(REPORT_SCHEMA),
  createdAt: z.string(),
  command: z.string(),
  seed: z.number(),
  versions: z.record(z.string(), z.string().nullable()),
  dataset: z.object({
    ref: z.string(),
    name: z.string(),
    classes: z.array(z.string()),
    selectedItems: z.number().int(),
    perClassCounts: z.array(z.number().int()),
  }),
  options: z.record(z.string(), z.unknown()),
  models: z.array(modelReportSchema),
  similarity: z
    .object({
      method: z.enum(['linear', 'debiased']),
      definition: z.string(),
      n: z.number().int(),
      layers: z.array(z.object({ model: z.string(), layer: z.string(), depth: z.number() })),
      matrix: z.array(z.array(z.number().nullable())),
    })
    .refine((s) => s.matrix.length === s.layers.length && s.matrix.every((row) => row.length === s.layers.length), {
      message: 'similarity.matrix must be square with one row and one column per entry of similarity.layers',
      path: ['matrix'],
    })
    .optional(),
  gates: z.array(z.object({ spec: z.string(), passed: z.boolean(), detail: z.string() })).optional(),
  warnings: z.array(z.string()),
});

export type MetricRecord = z.infer<typeof metricSchema>;
export type LayerReport = z.infer<typeof layerReportSchema>;
export type ModelReport = z.infer<typeof modelReportSchema>;
export type Report = z.infer<typeof reportSchema>;

export function reportJsonSchema(): unknown {
  return z.toJSONSchema(reportSchema);
}
