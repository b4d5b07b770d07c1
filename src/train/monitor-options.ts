/**
 * The training monitor's options: `--monitor` (checkpoint schedule, held-out κ, label
 * permutations, probe) and `--probe-set` (how many training images the monitor measures on), and
 * the seeded stratified draw of that probe subset.
 */
import { UsageError } from '../errors.js';
import { selectIndices } from '../data/sampling.js';
import type { MonitorSpec, ProbeSetSpec } from '../report/monitor-schema.js';

export const MONITOR_DEFAULTS: MonitorSpec = { unit: 'epoch', every: 1, initial: true, heldOut: true, permutations: 0, probe: true };

/** How `--monitor` is written, for help texts and errors. */
export const MONITOR_SYNTAX =
  'every=N (epochs) | every=Nepochs | every=Nsteps, and optionally initial=on|off, heldout=on|off, null=P (label permutations), probe=on|off; ' +
  'comma- or space-separated, e.g. `every=1` or `every=500steps,heldout=off`';

const MONITOR_KEYS = ['every', 'initial', 'heldout', 'null', 'probe'] as const;

function onOff(key: string, v: string): boolean {
  if (/^(on|true|yes|1)$/i.test(v)) return true;
  if (/^(off|false|no|0)$/i.test(v)) return false;
  throw new UsageError(`--monitor ${key}=${v}: use ${key}=on or ${key}=off`);
}

/** Parses `--monitor` (an empty string, as a bare `--monitor` gives, means every epoch). */
export function parseMonitorSpec(text: string): MonitorSpec {
  const spec: MonitorSpec = { ...MONITOR_DEFAULTS };
  const seen = new Set<string>();
  for (const item of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^([A-Za-z-]+)=(.*)$/.exec(item);
    if (!m) throw new UsageError(`--monitor: cannot read \`${item}\` (expected key=value)`, `syntax: ${MONITOR_SYNTAX}`);
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    if (!(MONITOR_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`--monitor: unknown key \`${m[1]}\` (valid keys: ${MONITOR_KEYS.join(', ')})`, `syntax: ${MONITOR_SYNTAX}`);
    }
    if (seen.has(key)) throw new UsageError(`--monitor: \`${key}\` given twice`);
    seen.add(key);
    if (key === 'every') {
      const e = /^([0-9]+)\s*(epochs?|steps?)?$/i.exec(value);
      const n = e ? Number(e[1]) : NaN;
      if (!e || !Number.isSafeInteger(n) || n < 1) {
        throw new UsageError(`--monitor every=${value}: expected a positive whole number of epochs or steps (every=1, every=2epochs, every=500steps)`);
      }
      spec.every = n;
      spec.unit = e[2] && /^step/i.test(e[2]) ? 'step' : 'epoch';
    } else if (key === 'initial') spec.initial = onOff(key, value);
    else if (key === 'heldout') spec.heldOut = onOff(key, value);
    else if (key === 'probe') spec.probe = onOff(key, value);
    else {
      const p = Number(value);
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(p) || p > 100) throw new UsageError(`--monitor null=${value}: expected a whole number of label permutations from 0 to 100`);
      spec.permutations = p;
    }
  }
  return spec;
}

export const PROBE_SET_DEFAULT: ProbeSetSpec = { perClass: 200 };
/** Fewer rows per class than this leave the κ and probe splits a handful of rows per side. */
export const MIN_PROBE_PER_CLASS = 10;

/** Parses `--probe-set`: `200/class` (per class) or `2000` (in all, split evenly over the classes). */
export function parseProbeSet(text: string): ProbeSetSpec {
  const t = text.trim();
  const m = /^([0-9]+)\s*(\/\s*class)?$/i.exec(t);
  const n = m ? Number(m[1]) : NaN;
  if (!m || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--probe-set \`${text}\`: expected N/class (images per class, e.g. 200/class) or N (images in all, split evenly over the classes)`);
  }
  if (m[2]) {
    if (n < MIN_PROBE_PER_CLASS) throw new UsageError(`--probe-set ${t}: at least ${MIN_PROBE_PER_CLASS}/class (κ and the probe split each class in two)`);
    return { perClass: n };
  }
  return { total: n };
}

/** Images per class for K classes; throws when a total leaves fewer than the minimum per class. */
export function probePerClass(spec: ProbeSetSpec, K: number): number {
  const per = spec.perClass ?? Math.floor((spec.total ?? 0) / K);
  if (per < MIN_PROBE_PER_CLASS) {
    const asked = spec.perClass !== undefined ? `${spec.perClass}/class` : String(spec.total);
    throw new UsageError(`--probe-set ${asked}: ${per} per class for ${K} classes; at least ${MIN_PROBE_PER_CLASS} per class are needed (${MIN_PROBE_PER_CLASS * K} in all)`);
  }
  return per;
}

/**
 * The probe subset: for each class, `perClass` of its rows (all of them when it has fewer), the
 * seeded stratified draw of data/sampling.ts, sorted by row index. Its seed is derived from the
 * run's seed, so the subset never shares a stream with the training Rng.
 */
export function selectProbeSet(labels: Int32Array, K: number, perClass: number, seed: number): Int32Array {
  return selectIndices(labels, K, { perClass, seed: (Math.imul(seed >>> 0, 0x2545f491) ^ 0x7f4a7c15) >>> 0 });
}
