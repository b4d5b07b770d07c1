/**
 * What counts as a defect. In-process: a thrown error that is not a LayerprobeError with exit code
 * 1 or 2 (the CLI would print "internal error"), or whose message is not one clear line (several
 * lines, a stack frame, onnxruntime's C++ source location, more than MAX_MESSAGE characters).
 * Through the CLI: an exit code outside {0, 1, 2}, a signal, a run past the time limit, a peak RSS
 * of 2 GB or more, or stderr that is not exactly one `layerprobe: error:` line (plus its hint).
 */
import { LayerprobeError } from '../../src/errors.js';

export const MAX_MESSAGE = 2000;
export const MAX_RSS_KB = 2 * 1024 * 1024;

/** Why a message is not one clear line, or null when it is. */
export function unclear(message: string): string | null {
  if (message.includes('\n')) return 'message spans several lines';
  if (/\bat .+:\d+:\d+\)?$|\n\s+at /m.test(message)) return 'message holds a stack frame';
  if (/\.(?:cc|cpp|h|hpp):\d+/.test(message)) return 'message holds a C++ source location';
  if (/internal error/.test(message)) return 'internal error';
  if (message.length > MAX_MESSAGE) return `message of ${message.length} characters`;
  return null;
}

export type Verdict = { defect: false; outcome: 'ok' | 'refused'; message?: string } | { defect: true; kind: string; message: string };

export function judgeThrown(e: unknown): Verdict {
  if (!(e instanceof LayerprobeError)) {
    const m = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    return { defect: true, kind: 'not a LayerprobeError (the CLI says "internal error")', message: m.slice(0, 500) };
  }
  if (e.exitCode !== 1 && e.exitCode !== 2) return { defect: true, kind: `exit code ${e.exitCode}`, message: e.message.slice(0, 500) };
  const why = unclear(e.message) ?? (e.hint ? unclear(e.hint) : null);
  if (why) return { defect: true, kind: why, message: e.message.slice(0, 500) };
  return { defect: false, outcome: 'refused', message: e.message };
}

export interface CliRun {
  code: number | null;
  signal: string | null;
  stderr: string;
  seconds: number;
  timedOut: boolean;
  maxRssKb: number | null;
}

export function judgeCli(r: CliRun, limitSeconds: number): Verdict {
  if (r.timedOut) return { defect: true, kind: `ran past the ${limitSeconds} s limit`, message: r.stderr.slice(-300) };
  if (r.signal) return { defect: true, kind: `killed by ${r.signal}`, message: r.stderr.slice(-300) };
  if (r.maxRssKb !== null && r.maxRssKb >= MAX_RSS_KB) return { defect: true, kind: `peak RSS ${(r.maxRssKb / 1024).toFixed(0)} MB`, message: '' };
  if (r.code !== 0 && r.code !== 1 && r.code !== 2) return { defect: true, kind: `exit code ${r.code}`, message: r.stderr.slice(-300) };
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => l.startsWith('layerprobe: error:'));
  if (r.code === 0) {
    if (errors.length) return { defect: true, kind: 'error line with exit 0', message: errors[0]! };
    const leak = lines.find((l) => /\.(?:cc|cpp|h|hpp):\d+/.test(l));
    if (leak) return { defect: true, kind: 'a C++ source location on stderr', message: leak.slice(0, 300) };
    return { defect: false, outcome: 'ok' };
  }
  // One error line, optionally followed by one hint line; TF.js/onnxruntime warnings are not ours to judge.
  const ours = lines.filter((l) => l.startsWith('layerprobe:') || l.startsWith('  hint:') || /^\s+at /.test(l));
  if (errors.length !== 1) return { defect: true, kind: `${errors.length} error lines`, message: r.stderr.slice(-500) };
  const leaked = lines.find((l) => /\.(?:cc|cpp|h|hpp):\d+/.test(l));
  const why = unclear(errors[0]!) ?? (ours.some((l) => /^\s+at /.test(l)) ? 'stack trace on stderr' : leaked ? `a C++ source location on stderr: ${leaked.slice(0, 200)}` : null);
  if (why) return { defect: true, kind: why, message: errors[0]!.slice(0, 500) };
  return { defect: false, outcome: 'refused', message: errors[0] };
}
