/**
 * JSON for command results: non-finite numbers become null (JSON has no NaN) and typed arrays
 * plain arrays. Its own module so that `theory` and the subcommands it mounts share it without
 * an import cycle.
 */
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
