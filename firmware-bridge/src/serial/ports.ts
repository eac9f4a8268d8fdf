import { existsSync, readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CanopyError, ErrorCode, sleep } from "@canopy/protocol";
import type { SerialMode } from "./decoder.js";

export interface PortSpec {
  /** Literal path or a glob whose last segment holds `*` / `?` (e.g. `/dev/ttyACM*`). */
  path: string;
  baudRate: number;
  mode: SerialMode;
}

const MODES = new Set<SerialMode>(["auto", "text", "binary"]);

/** `PATH[:BAUD][:MODE]`, e.g. `/dev/ttyACM*:921600`, `/dev/ttyUSB0:115200:text`. */
export function parsePortSpec(spec: string, defaultBaud: number): PortSpec {
  const parts = spec.split(":");
  let mode: SerialMode = "auto";
  let baudRate = defaultBaud;
  const last = parts[parts.length - 1] ?? "";
  if (parts.length > 1 && MODES.has(last as SerialMode)) {
    mode = last as SerialMode;
    parts.pop();
  }
  const maybeBaud = parts[parts.length - 1] ?? "";
  if (parts.length > 1 && /^\d+$/.test(maybeBaud)) {
    baudRate = Number(maybeBaud);
    parts.pop();
  }
  const path = parts.join(":");
  if (!path) throw new CanopyError(ErrorCode.InvalidInput, `serial port ${JSON.stringify(spec)}: empty path`);
  if (baudRate < 50 || baudRate > 16_000_000) {
    throw new CanopyError(ErrorCode.InvalidInput, `serial port ${JSON.stringify(spec)}: baud rate ${baudRate} out of range`);
  }
  if (isGlob(dirname(path))) {
    throw new CanopyError(ErrorCode.InvalidInput, `serial port ${JSON.stringify(spec)}: only the last path segment may hold * or ?`);
  }
  return { path, baudRate, mode };
}

export function isGlob(path: string): boolean {
  return /[*?]/.test(path);
}

function globRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/** Paths that match now. Literal paths are returned as is (a supervisor retries them until they exist). */
export function expand(spec: PortSpec): string[] {
  if (!isGlob(spec.path)) return [spec.path];
  const dir = dirname(spec.path);
  const re = globRegExp(basename(spec.path));
  try {
    return readdirSync(dir)
      .filter((e) => re.test(e))
      .map((e) => join(dir, e))
      .filter((p) => existsSync(p))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Hot-plug: every `intervalMs` re-expands the globs and calls `start` for each path that matches and
 * has no running supervisor. Supervisors of glob-found ports end when their path disappears.
 */
export async function scanPorts(
  specs: PortSpec[],
  intervalMs: number,
  start: (path: string, spec: PortSpec, fromGlob: boolean) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const running = new Map<string, Promise<void>>();
  do {
    for (const spec of specs) {
      for (const path of expand(spec)) {
        if (running.has(path)) continue;
        const p = start(path, spec, isGlob(spec.path)).finally(() => running.delete(path));
        running.set(path, p);
      }
    }
  } while (await sleep(intervalMs, signal));
  await Promise.allSettled([...running.values()]);
}
