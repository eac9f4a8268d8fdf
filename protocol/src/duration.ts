import { CanopyError, ErrorCode } from "./errors.js";

const UNITS = { ms: 1, s: 1e3, m: 60e3, h: 3_600e3, d: 86_400e3 } as const;

/** Parses "500ms", "2s", "10m", "1h", "7d" (a bare number is milliseconds) into milliseconds. */
export function parseDuration(text: string, what = "duration"): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!m) {
    throw new CanopyError(
      ErrorCode.InvalidInput,
      `invalid ${what} ${JSON.stringify(text)}: use a number with a unit, e.g. 500ms, 2s, 10m, 1h, 7d`,
    );
  }
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? "ms") as keyof typeof UNITS]);
}

/** Parses "256MiB", "1G", "500k", "1048576" into bytes (K/M/G/T are powers of 1024). */
export function parseBytes(text: string, what = "size"): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?$/.exec(String(text).trim());
  if (!m) {
    throw new CanopyError(ErrorCode.InvalidInput, `invalid ${what} ${JSON.stringify(text)}: use e.g. 256MiB, 1G, 500k`);
  }
  const pow = " kmgt".indexOf((m[2] ?? "").toLowerCase() || " ");
  return Math.round(Number(m[1]) * 1024 ** Math.max(0, pow));
}
