import { z } from "zod";
import { CanopyError, ErrorCode } from "../errors.js";
import { parseBytes, parseDuration } from "../duration.js";
import { describeIssues } from "./common.js";
import { SIGNING_KEY_PATTERN } from "./firmware.js";

/**
 * One schema per config key Canopy owns. The CLI and the gateway refuse a bad value or an unknown key
 * in a Canopy namespace before anything is written (exit 2, with the rule and the nearest key); the
 * agent runs the same schema when it applies the rendered value. Keys in any other namespace belong to
 * device apps and are free-form, within the size caps below.
 */

/** Settings the agent applies inside its own process, without a restart. */
export type LiveSetting = "log.level" | "heartbeat.interval" | "up.maxBytes" | "up.maxAge";

export interface ConfigKeySpec {
  schema: z.ZodType<unknown>;
  /** What an operator reads in the error message. */
  rule: string;
  /** Applied inside the agent without a restart; absent: delivered to apps (the bridge, collectors). */
  live?: LiveSetting;
}

const TIB = 1024 ** 4;

const parsed = (parse: (s: string) => number): z.ZodType<number, unknown> =>
  z.union([z.number().int(), z.string()]).transform((v, ctx) => {
    try {
      return typeof v === "number" ? v : parse(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

const duration = (minMs: number, maxMs: number): z.ZodType<number, unknown> =>
  parsed((s) => parseDuration(s)).pipe(
    z.number().min(minMs, `must be at least ${minMs} ms`).max(maxMs, `must be at most ${maxMs} ms`),
  );

const bytes = (min: number, max: number): z.ZodType<number, unknown> =>
  parsed((s) => parseBytes(s)).pipe(z.number().min(min, `must be at least ${min} bytes`).max(max, `must be at most ${max} bytes`));

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

export const CONFIG_KEYS: Readonly<Record<string, ConfigKeySpec>> = {
  "log.level": { schema: z.enum(LOG_LEVELS), rule: `one of ${LOG_LEVELS.join(", ")}`, live: "log.level" },
  "heartbeat.interval": { schema: duration(250, 600_000), rule: "a duration from 250ms to 10m", live: "heartbeat.interval" },
  "up.maxBytes": { schema: bytes(64 * 1024, TIB), rule: "a size from 64KiB to 1TiB, e.g. 256MiB", live: "up.maxBytes" },
  "up.maxAge": { schema: duration(600_000, 365 * 86_400_000), rule: "a duration from 10m to 365d", live: "up.maxAge" },
  "firmware.signingKey": {
    schema: z.string().regex(SIGNING_KEY_PATTERN, "must be an Ed25519 public key, 32 bytes base64url"),
    rule: "an Ed25519 public key, 32 bytes base64url (canopy firmware keygen sets it); devices then flash only images it signed",
  },
  "telemetry.interval": { schema: duration(100, 86_400_000), rule: "a duration from 100ms to 1d" },
  // Bridge settings mirror the bridge's own config schema; the bridge reads them from the app file.
  "bridge.serial": { schema: z.array(z.string().min(1)).max(64), rule: "a list of serial paths, e.g. [\"/dev/ttyACM0\"]" },
  "bridge.baudRate": { schema: z.number().int().positive().max(10_000_000), rule: "a positive integer (baud)" },
  "bridge.rescanMs": { schema: z.number().int().positive().max(86_400_000), rule: "a positive integer (ms)" },
  "bridge.maxFrameBytes": { schema: z.number().int().min(64).max(65536), rule: "an integer from 64 to 65536" },
  "bridge.commandTimeoutMs": { schema: z.number().int().positive().max(86_400_000), rule: "a positive integer (ms)" },
  "bridge.mqtt": {
    schema: z.looseObject({ listen: z.string().regex(/^[^:\s]*:\d{1,5}$/, "must be HOST:PORT") }),
    rule: 'an object {"listen":"HOST:PORT"}',
  },
};

/**
 * The spec of a Canopy key. Own properties only: `valueOf` or `constructor` is an app's key name, not
 * Object.prototype's function (a generated input found `config set valueOf {}` throwing a TypeError).
 */
export function configKeySpec(key: string): ConfigKeySpec | undefined {
  return Object.hasOwn(CONFIG_KEYS, key) ? CONFIG_KEYS[key] : undefined;
}

/** First tokens Canopy owns: any key under them must be listed in CONFIG_KEYS. */
export const CANOPY_CONFIG_NAMESPACES: readonly string[] = ["log", "heartbeat", "up", "telemetry", "bridge", "agent", "firmware"];

/** Size caps for any value, app keys included: it is stored in KV and rendered to every device. */
export const CONFIG_VALUE_MAX_BYTES = 64 * 1024;
export const CONFIG_VALUE_MAX_DEPTH = 32;

export type SettingCheck =
  | { owned: false; ok: true; value: unknown }
  | { owned: true; ok: true; value: unknown; spec: ConfigKeySpec }
  | { owned: boolean; ok: false; error: string };

/** Validates a setting; `value` of an ok result is the parsed form (durations and sizes as numbers). */
export function validateSetting(key: string, value: unknown): SettingCheck {
  const size = sizeProblem(value);
  if (size) return { owned: false, ok: false, error: `${key}: ${size}` };
  const spec = configKeySpec(key);
  if (!spec) {
    const ns = key.split(".")[0] ?? "";
    const near = nearestConfigKey(key);
    if (!CANOPY_CONFIG_NAMESPACES.includes(ns)) {
      // A near miss of a Canopy key (`lgo.level`) is a typo, not an app's namespace.
      if (near && editDistance(near, key) <= 2) return { owned: false, ok: false, error: `${key}: unknown Canopy setting; did you mean ${near}?` };
      return { owned: false, ok: true, value };
    }
    const known = Object.keys(CONFIG_KEYS).filter((k) => k.startsWith(`${ns}.`));
    const hint = near ? `did you mean ${near}? ` : `app settings go under their own namespace, e.g. app.${key}; `;
    return { owned: true, ok: false, error: `${key}: unknown Canopy setting; ${hint}(known under ${ns}.: ${known.join(", ") || "none"})` };
  }
  const r = spec.schema.safeParse(value);
  if (!r.success) return { owned: true, ok: false, error: `${key}: ${describeIssues(r.error).replace(/^value: /, "")} (got ${preview(value)}; must be ${spec.rule})` };
  return { owned: true, ok: true, value: r.data, spec };
}

/** For the door (CLI, gateway): throws a usage error when `validateSetting` refuses the value. */
export function checkSetting(key: string, value: unknown): void {
  const v = validateSetting(key, value);
  if (!v.ok) throw new CanopyError(ErrorCode.InvalidInput, v.error);
}

/**
 * Answers of `nearestConfigKey` by key: every app setting is checked on every device at every apply,
 * and the edit distances to all Canopy keys were about a third of the simulated agents' apply CPU in
 * the config bench. Bounded.
 */
const nearestCache = new Map<string, string | undefined>();
const NEAREST_CACHE_MAX = 1_024;

/** The known Canopy key closest to `key` by edit distance (undefined when nothing is close). */
export function nearestConfigKey(key: string): string | undefined {
  if (nearestCache.has(key)) return nearestCache.get(key);
  const near = computeNearest(key);
  if (nearestCache.size >= NEAREST_CACHE_MAX) nearestCache.delete(nearestCache.keys().next().value as string);
  nearestCache.set(key, near);
  return near;
}

function computeNearest(key: string): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of Object.keys(CONFIG_KEYS)) {
    const d = editDistance(k.toLowerCase(), key.toLowerCase());
    if (!best || d < best.d) best = { k, d };
  }
  return best && best.d <= Math.max(2, Math.floor(key.length / 3)) ? best.k : undefined;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return 99;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 99;
}

function sizeProblem(value: unknown): string | undefined {
  // Bounded before anything is serialized: a 10 MB string or a 200,000-key object is refused after
  // looking at a few kilobytes of it, not after building its JSON (measured: 75–800 ms each before).
  const walked = walkBounded(value);
  if (walked === "too-deep") return `value nests deeper than ${CONFIG_VALUE_MAX_DEPTH} levels`;
  if (walked === "too-big") return `value is over the limit of ${CONFIG_VALUE_MAX_BYTES} bytes as JSON ${LARGE_HINT}`;
  let text: string;
  try {
    text = JSON.stringify(value) ?? "null";
  } catch {
    return "value is not JSON";
  }
  const n = Buffer.byteLength(text);
  if (n > CONFIG_VALUE_MAX_BYTES) return `value is ${n} bytes as JSON; the limit is ${CONFIG_VALUE_MAX_BYTES} bytes ${LARGE_HINT}`;
  return undefined;
}

const LARGE_HINT = "(put large data in a file or the object store)";

/**
 * Walks a value with a budget: "too-big" once a lower bound of its JSON size passes the limit,
 * "too-deep" past the depth limit, "ok" otherwise (then the exact size is cheap to measure).
 */
function walkBounded(value: unknown): "ok" | "too-big" | "too-deep" {
  let bytes = 0;
  const stack: Array<{ v: unknown; d: number }> = [{ v: value, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop() as { v: unknown; d: number };
    if (typeof v === "string") bytes += v.length + 2;
    else if (typeof v !== "object" || v === null) bytes += 4;
    else {
      if (d + 1 > CONFIG_VALUE_MAX_DEPTH) return "too-deep";
      bytes += 2;
      const isArray = Array.isArray(v);
      // for…in, not Object.entries: stops early without listing 200,000 keys first.
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        bytes += (isArray ? 0 : k.length + 3) + 1;
        if (bytes > CONFIG_VALUE_MAX_BYTES) return "too-big";
        stack.push({ v: (v as Record<string, unknown>)[k], d: d + 1 });
      }
    }
    if (bytes > CONFIG_VALUE_MAX_BYTES) return "too-big";
  }
  return "ok";
}

function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
