/**
 * CI gates: `--fail-under probe_heldout=0.9` / `--fail-over compression@first=2`. A gate names a
 * metric, optionally a layer (`@id`, `@first`, `@last` (default), `@all`, `@any`), and a bound.
 * `accuracy` is the model's own accuracy at its output. Every model in the report is checked.
 */
import { UsageError } from '../errors.js';
import { catalogRows, OUTPUT_METRICS, type MetricGroup } from '../metrics/catalog.js';
import type { Report } from './schema.js';
import { didYouMean } from '../util/suggest.js';

export interface Gate {
  spec: string;
  metric: string;
  layer: string;
  bound: number;
  direction: 'under' | 'over';
}

export interface GateResult {
  spec: string;
  passed: boolean;
  detail: string;
}

/**
 * Each gate's metric must be one the run will compute (the metric catalogue says which group or
 * source produces it): a typo, or a metric of a group that is not selected, is a usage error
 * before any image is read (not after the whole audit).
 */
export function checkGateMetrics(gates: readonly Gate[], groups: readonly MetricGroup[], baseline: boolean): void {
  const rows = catalogRows().filter((r) => r.source !== 'compare');
  const known = [...rows.map((r) => r.key), ...OUTPUT_METRICS];
  for (const g of gates) {
    if ((OUTPUT_METRICS as readonly string[]).includes(g.metric)) continue;
    const row = rows.find((r) => r.key === g.metric);
    if (!row) throw new UsageError(`gate ${g.spec}: there is no metric \`${g.metric}\`; ${didYouMean(g.metric, known)}`.replace(/; $/, ''));
    if (row.source === 'baseline') {
      if (!baseline) throw new UsageError(`gate ${g.spec}: \`${g.metric}\` comes from the random-layer baseline`, 'add --baseline random-layer');
      if (row.needs && !groups.includes(row.needs)) throw new UsageError(`gate ${g.spec}: \`${g.metric}\` also needs the ${row.needs} metrics`, `add it: --metrics ${[...groups, row.needs].join(',')}`);
      continue;
    }
    const group = row.source as MetricGroup;
    if (!groups.includes(group)) throw new UsageError(`gate ${g.spec}: \`${g.metric}\` comes from the ${group} metrics, which this run does not compute`, `add it: --metrics ${[...groups, group].join(',')}`);
  }
}

export function parseGate(text: string, direction: 'under' | 'over'): Gate {
  const m = /^([A-Za-z0-9_.]+)(?:@(.+))?=(.+)$/.exec(text.trim());
  const bound = m ? Number(m[3]) : NaN;
  if (!m || !Number.isFinite(bound)) {
    throw new UsageError(`--fail-${direction} \`${text}\` is not of the form metric[@layer]=number`, 'e.g. --fail-under probe_heldout=0.9 or --fail-over compression@last=0.5');
  }
  return { spec: `--fail-${direction} ${text}`, metric: m[1]!, layer: m[2] ?? 'last', bound, direction };
}

/** Check every gate against the report; unknown metric or layer names are usage errors. */
export function evaluateGates(report: Report, gates: readonly Gate[]): GateResult[] {
  const results: GateResult[] = [];
  for (const g of gates) {
    for (const model of report.models) {
      const fails = (v: number) => (g.direction === 'under' ? v < g.bound : v > g.bound);
      const cmp = g.direction === 'under' ? '≥' : '≤';
      if (g.metric === 'accuracy') {
        const v = model.accuracy?.value;
        if (v === undefined || v === null) throw new UsageError(`gate ${g.spec}: model ${model.name} has no accuracy (no classifier output)`);
        results.push({ spec: g.spec, passed: !fails(v), detail: `${model.name} accuracy ${fmt(v)} (needs ${cmp} ${g.bound})` });
        continue;
      }
      const names = [...new Set(model.layers.flatMap((l) => Object.keys(l.metrics)))];
      if (!names.includes(g.metric)) {
        throw new UsageError(`gate ${g.spec}: metric \`${g.metric}\` is not in the report; ${didYouMean(g.metric, [...names, 'accuracy'])}`.replace(/; $/, ''));
      }
      let layers = model.layers;
      if (g.layer === 'last') layers = layers.slice(-1);
      else if (g.layer === 'first') layers = layers.slice(0, 1);
      else if (g.layer !== 'all' && g.layer !== 'any') {
        layers = layers.filter((l) => l.id === g.layer);
        if (layers.length === 0) {
          throw new UsageError(`gate ${g.spec}: layer \`${g.layer}\` is not in the report for ${model.name}; ${didYouMean(g.layer, model.layers.map((l) => l.id))}`);
        }
      }
      // A failed cell (or an undefined value) fails the gate: a gate passes only on a number.
      const values = layers.map((l) => ({ id: l.id, v: l.metrics[g.metric]?.value ?? null, failed: l.metrics[g.metric]?.failed }));
      const bad = values.filter((x) => x.v === null || fails(x.v));
      const passed = g.layer === 'any' ? bad.length < values.length : bad.length === 0;
      const shown = (passed ? values : bad).map((x) => `${x.id}=${x.failed !== undefined ? `failed (${x.failed})` : x.v === null ? 'n/a' : fmt(x.v)}`).join(', ');
      results.push({ spec: g.spec, passed, detail: `${model.name} ${g.metric} ${shown} (needs ${cmp} ${g.bound})` });
    }
  }
  return results;
}

function fmt(v: number): string {
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toFixed(4) : v.toExponential(3);
}
