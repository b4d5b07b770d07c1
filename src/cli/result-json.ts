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
 * The one shape every command's `--json` is meant to print (issue 16): which command, which
 * layerprobe, the command's own result, and the warnings it would otherwise print on stderr.
 * Commands move to it together with the tests that read their output; until then each prints its
 * result bare, as documented in its --help.
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
