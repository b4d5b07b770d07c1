/**
 * Errors that reach the user. The CLI prints `message` (and `hint`) on one line and exits with
 * `exitCode`; anything that is not a LayerprobeError is a bug and is reported as such.
 * Exit codes follow ARCHITECTURE.md: 1 runtime failure, 2 usage/config error, 3 threshold failed,
 * 4 report written but some metric cells failed.
 */
export type ExitCode = 1 | 2 | 3 | 4 | 130;

/**
 * Names quoted from inside a file can be any length (the fuzzer made a 10,000-character layer
 * name): a quoted part over 120 characters, or an unbroken run over 300, is cut to its start and
 * its length, so that the message stays one readable line.
 */
export function clipQuoted(message: string): string {
  return message
    .replace(/([`"])([^`"\n]{120,}?)\1/g, (_m, q: string, s: string) => `${q}${s.slice(0, 60)}…${q} (${s.length} characters)`)
    .replace(/\S{300,}/g, (s) => `${s.slice(0, 100)}… (${s.length} characters)`);
}

export class LayerprobeError extends Error {
  readonly exitCode: ExitCode;
  readonly hint?: string;
  constructor(message: string, exitCode: ExitCode, hint?: string) {
    super(clipQuoted(message));
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** The user asked for something that cannot be: bad flag, unknown layer, malformed spec (exit 2). */
export class UsageError extends LayerprobeError {
  constructor(message: string, hint?: string) {
    super(message, 2, hint);
  }
}

/** The inputs exist but could not be used: corrupt file, NaN activations, solver failure (exit 1). */
export class RuntimeFailure extends LayerprobeError {
  constructor(message: string, hint?: string) {
    super(message, 1, hint);
  }
}

/** A `--fail-under` / `--fail-over` gate did not hold (exit 3). */
export class ThresholdFailure extends LayerprobeError {
  constructor(message: string) {
    super(message, 3);
  }
}

/** The report was written, but some metrics failed for some layers (exit 4); each says why in the report. */
export class MetricCellsFailed extends LayerprobeError {
  constructor(message: string, hint?: string) {
    super(message, 4, hint);
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
