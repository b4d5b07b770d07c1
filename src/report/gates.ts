/**
 * CI gates: `--fail-under probe_heldout=0.9` / `--fail-over compression@first=2`. A gate names a
 * metric, optionally a layer (`@id`, `@first`, `@last` (default), `@all`, `@any`), and a bound.
 * `accuracy` is the model's own accuracy at its output. Every model in the report is checked.
 */
import { UsageError } from '../errors.js';
import type { MetricGroup } from '../spec/probe-spec.js';
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
 * The per-layer metrics each metric group writes into a report (checked against a real audit in
 * test/audit.test.ts), so that a gate can be checked before the run, not after it.
 */
export const GROUP_METRICS: Record<MetricGroup, readonly string[]> = {
  geometry: ['compression', 'discrimination'],
  collapse: ['nc1', 'nc2_equinorm', 'nc2_equiangularity', 'nc2_max_angle', 'nc3', 'nc4', 'cdnv'],
  rank: ['numerical_rank', 'effective_rank'],
  probe: ['probe_train_accuracy', 'probe_heldout_accuracy', 'probe_control_train_accuracy', 'probe_control_heldout_accuracy'],
  mdlsm: ['mdlsm_kappa', 'mdlsm_heldout_kappa', 'mdlsm_null_kappa', 'mdlsm_inseparable', 'mdlsm_heldout_inseparable'],
  separable: ['lp_separable_fraction'],
};

/** What `--baseline random-layer` adds, and which group each name also needs. */
export const BASELINE_METRICS: Record<string, MetricGroup | null> = {
  baseline_width_ratio: null,
  baseline_probe_heldout_accuracy: null,
  excess_probe_heldout_accuracy: 'probe',
  baseline_mdlsm_heldout_kappa: 'mdlsm',
  excess_mdlsm_heldout_kappa: 'mdlsm',
};

/**
 * Each gate's metric must be one the run will compute: a typo, or a metric of a group that is not
 * selected, is a usage error before any image is read (not after the whole audit).
 */
export function checkGateMetrics(gates: readonly Gate[], groups: readonly MetricGroup[], baseline: boolean): void {
  const known = [...Object.values(GROUP_METRICS).flat(), ...Object.keys(BASELINE_METRICS), 'accuracy'];
  for (const g of gates) {
    if (g.metric === 'accuracy') continue;
    const group = (Object.keys(GROUP_METRICS) as MetricGroup[]).find((k) => GROUP_METRICS[k].includes(g.metric));
    if (group) {
      if (!groups.includes(group)) throw new UsageError(`gate ${g.spec}: \`${g.metric}\` comes from the ${group} metrics, which this run does not compute`, `add it: --metrics ${[...groups, group].join(',')}`);
      continue;
    }
    if (g.metric in BASELINE_METRICS) {
      if (!baseline) throw new UsageError(`gate ${g.spec}: \`${g.metric}\` comes from the random-layer baseline`, 'add --baseline random-layer');
      const needs = BASELINE_METRICS[g.metric];
      if (needs && !groups.includes(needs)) throw new UsageError(`gate ${g.spec}: \`${g.metric}\` also needs the ${needs} metrics`, `add it: --metrics ${[...groups, needs].join(',')}`);
      continue;
    }
    throw new UsageError(`gate ${g.spec}: there is no metric \`${g.metric}\`; ${didYouMean(g.metric, known)}`.replace(/; $/, ''));
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
      const values = layers.map((l) => ({ id: l.id, v: l.metrics[g.metric]?.value ?? null }));
      const bad = values.filter((x) => x.v === null || fails(x.v));
      const passed = g.layer === 'any' ? bad.length < values.length : bad.length === 0;
      const shown = (passed ? values : bad).map((x) => `${x.id}=${x.v === null ? 'n/a' : fmt(x.v)}`).join(', ');
      results.push({ spec: g.spec, passed, detail: `${model.name} ${g.metric} ${shown} (needs ${cmp} ${g.bound})` });
    }
  }
  return results;
}

function fmt(v: number): string {
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toFixed(4) : v.toExponential(3);
}
