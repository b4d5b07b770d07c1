/**
 * The synchronicity summary of a monitored run (docs/theory.md): per layer, how each monitored
 * metric moves with the model's training accuracy on the probe subset — Pearson and Spearman of
 * the levels and of the changes between consecutive checkpoints, over all checkpoints and over
 * those after the first update — and the layers ranked by how well κ tracks training.
 */
import { correlate, differences, type Correlation } from '../stats/correlation.js';
import { SYNC_METRICS, type LayerSynchronicity, type MonitorCheckpoint, type Synchronicity, type SyncMetric } from '../report/monitor-schema.js';

export const SYNC_DEFINITION =
  'synchronicity: per layer, Pearson and Spearman (average ranks for ties) correlation between the layer metric at each checkpoint ' +
  'and the model accuracy on the probe subset of the training data at the same checkpoint (levels), and between their changes from one checkpoint to the next (changes)';

function layerSync(checkpoints: readonly MonitorCheckpoint[], layer: string, metric: SyncMetric): LayerSynchronicity {
  const pair = (cps: readonly MonitorCheckpoint[]): { levels: Correlation; changes: Correlation } => {
    const acc = cps.map((c) => c.trainAccuracy);
    const m = cps.map((c) => c.layers.find((l) => l.layer === layer)?.[metric] ?? null);
    return { levels: correlate(m, acc), changes: correlate(differences(m), differences(acc)) };
  };
  return { layer, ...pair(checkpoints), duringTraining: pair(checkpoints.filter((c) => c.step > 0)) };
}

function rankKey(s: LayerSynchronicity): number[] {
  const v = (x: number | null): number => (x === null ? -Infinity : x);
  return [v(s.duringTraining.changes.pearson), v(s.changes.pearson), v(s.levels.pearson)];
}

/** The synchronicity summary of a monitored run. */
export function synchronicity(checkpoints: readonly MonitorCheckpoint[], layers: readonly string[]): Synchronicity {
  const byMetric = {} as Record<SyncMetric, LayerSynchronicity[]>;
  for (const metric of SYNC_METRICS) byMetric[metric] = layers.map((l) => layerSync(checkpoints, l, metric));
  const kappa = byMetric.kappa;
  const ranking = [...kappa]
    .sort((a, b) => {
      const [ka, kb] = [rankKey(a), rankKey(b)];
      for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return kb[i]! > ka[i]! ? 1 : -1;
      return 0;
    })
    // Only layers whose primary key (the changes during training) is defined are ranked: with too
    // few checkpoints every correlation the ranking is about is undefined, and naming a layer from
    // the fallback keys alone would claim more than the run shows.
    .filter((s) => s.duringTraining.changes.pearson !== null)
    .map((s) => s.layer);
  const during = checkpoints.filter((c) => c.step > 0).length;
  const undetermined =
    ranking.length === 0
      ? `undetermined (too few checkpoints: correlations undefined — ${during} checkpoint${during === 1 ? '' : 's'} after the initial one give ${Math.max(0, during - 1)} change${during - 1 === 1 ? '' : 's'}; a correlation needs 3, i.e. at least 4 checkpoints after the initial one, or the κ changes are constant)`
      : undefined;
  return {
    definition: SYNC_DEFINITION,
    against: 'trainAccuracy',
    layers: kappa,
    ranking,
    best: ranking[0] ?? null,
    ...(undetermined ? { undetermined } : {}),
    byMetric,
    note:
      `${checkpoints.length} checkpoints, ${Math.max(0, checkpoints.length - 1)} changes; correlations need at least 3 points (null otherwise). ` +
      'Over all checkpoints they are dominated by the first, largest step of training; "during training" leaves the initial checkpoint out.',
  };
}
