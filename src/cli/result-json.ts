/**
 * JSON for command results: non-finite numbers become null (JSON has no NaN) and typed arrays
 * plain arrays. Its own module so that `theory` and the subcommands it mounts share it without
 * an import cycle.
 */
import { layerprobeVersion } from '../util/versions.js';

export function resultJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) return null;
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
      return v;
    },
    2,
  );
}

/**
 * The one shape every command's `--json` prints (issue 16): which command, which layerprobe, the
 * command's own result, and the warnings it printed on stderr (those stay on stderr too, for the
 * person watching; the envelope keeps them for the program reading stdout).
 */
export interface JsonEnvelope<T> {
  command: string;
  version: string;
  result: T;
  warnings: string[];
}

export function envelopeJson<T>(command: string, result: T, warnings: readonly string[] = []): string {
  const envelope: JsonEnvelope<T> = { command, version: layerprobeVersion(), result, warnings: [...warnings] };
  return resultJson(envelope);
}

/** Warnings this process has said through `warn`, for the envelope. */
const said: string[] = [];

/** A warning on stderr (`layerprobe: warning: …`), unless quiet, and kept for the --json envelope. */
export function warn(message: string, opts: { quiet?: boolean } = {}): void {
  said.push(message);
  if (!opts.quiet) process.stderr.write(`layerprobe: warning: ${message}\n`);
}

/**
 * Prints the envelope on stdout: `result`, with the warnings said so far and the command's own
 * (a report's warnings, a theory result's), each once.
 */
export function printJson(command: string, result: unknown, warnings: readonly string[] = []): void {
  const all = [...said];
  for (const w of warnings) if (!all.includes(w)) all.push(w);
  process.stdout.write(envelopeJson(command, result, all) + '\n');
  // One envelope per command: a later command in the same process (tests, API hosts) starts afresh.
  said.length = 0;
}

/** A result's own `warnings` (theory results carry them), or none. */
export function warningsOf(result: unknown): string[] {
  const w = (result as { warnings?: unknown } | null)?.warnings;
  return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : [];
}
