/**
 * The training monitor's text outputs: monitor.csv (one row per checkpoint and layer) and the
 * synchronicity table printed at the end of a monitored run.
 */
import { csvLine } from './csv.js';
import type { MonitorResult } from './monitor-schema.js';

export const MONITOR_CSV_COLUMNS = [
  'checkpoint', 'epoch', 'step', 'epoch_progress', 'layer', 'layer_index', 'kappa', 'kappa_worst', 'kappa_worst_pair', 'kappa_heldout',
  'kappa_null', 'kappa_reduction', 'compression', 'discrimination', 'probe_accuracy', 'probe_train_accuracy', 'train_loss', 'train_accuracy',
  'running_loss', 'running_accuracy', 'test_loss', 'test_accuracy', 'monitor_seconds',
] as const;

/** monitor.csv: one row per checkpoint and layer. */
export function monitorCsv(r: MonitorResult): string {
  const lines = [MONITOR_CSV_COLUMNS.join(',')];
  for (const c of r.checkpoints) {
    c.layers.forEach((l, i) => {
      const row: (string | number | boolean | null)[] = [
        c.index, c.epoch, c.step, c.epochProgress, l.layer, i + 1, l.kappa, l.kappaWorst?.kappa ?? null,
        l.kappaWorst ? `${r.classes[l.kappaWorst.pair[0]]} vs ${r.classes[l.kappaWorst.pair[1]]}` : null, l.kappaHeldOut, l.kappaNull,
        l.kappaReduction, l.compression, l.discrimination, l.probeAccuracy, l.probeTrainAccuracy, c.trainLoss, c.trainAccuracy,
        c.runningLoss, c.runningAccuracy, c.testLoss, c.testAccuracy, c.seconds,
      ];
      lines.push(csvLine(row));
    });
  }
  return lines.join('\n') + '\n';
}

function fmt(v: number | null, digits = 3): string {
  return v === null ? '—' : v.toFixed(digits);
}

/** The synchronicity table printed at the end of a monitored run. */
export function synchronicityText(r: MonitorResult): string {
  const s = r.synchronicity;
  const w = Math.max(5, ...s.layers.map((l) => l.layer.length));
  const lines = [
    `synchronicity: κ(t) vs training accuracy(t) on the probe subset (${r.checkpoints.length} checkpoints)`,
    `  ${'layer'.padEnd(w)}  levels: Pearson Spearman   changes: Pearson Spearman   during training: levels changes (Pearson)   final κ  held-out κ`,
  ];
  const last = r.checkpoints[r.checkpoints.length - 1];
  for (const l of s.layers) {
    const p = last?.layers.find((x) => x.layer === l.layer);
    lines.push(
      `  ${l.layer.padEnd(w)}  ${fmt(l.levels.pearson).padStart(15)} ${fmt(l.levels.spearman).padStart(8)}   ${fmt(l.changes.pearson).padStart(16)} ${fmt(l.changes.spearman).padStart(8)}   ${fmt(l.duringTraining.levels.pearson).padStart(22)} ${fmt(l.duringTraining.changes.pearson).padStart(7)}             ${fmt(p?.kappa ?? null).padStart(7)}  ${fmt(p?.kappaHeldOut ?? null).padStart(10)}`,
    );
  }
  lines.push(`  tracks training best: ${s.best ?? s.undetermined ?? 'undetermined (too few checkpoints: correlations undefined)'}${s.ranking.length > 1 ? ` (ranking: ${s.ranking.join(' > ')})` : ''}`);
  const t = r.timing;
  lines.push(
    `  monitor time ${t.monitorSeconds.toFixed(1)} s (${(100 * t.overhead).toFixed(0)}% of ${t.trainSeconds.toFixed(1)} s training; ` +
      `κ ${t.kappaSeconds.toFixed(1)} s, probe ${t.probeSeconds.toFixed(1)} s, forward ${t.forwardSeconds.toFixed(1)} s)`,
  );
  return lines.join('\n') + '\n';
}
