import { z } from "zod";
import { describeIssues, parseBytes, parseDuration } from "@canopy/protocol";

/**
 * Settings the agent owns: each has a schema, and a value that fails it is never applied. Keys in an
 * agent namespace that are not listed are rejected too (a typo like `log.levle` must not pass silently
 * to apps). Everything else belongs to device apps and is passed through untouched.
 */
export type LiveSetting = "log.level" | "heartbeat.interval" | "up.maxBytes" | "up.maxAge";

export interface KeySpec {
  schema: z.ZodType<unknown>;
  /** Applied inside the agent without a restart; absent: delivered to apps (the bridge, collectors). */
  live?: LiveSetting;
}

const duration = (minMs: number, maxMs: number): z.ZodType<number> =>
  z
    .union([z.number().int(), z.string()])
    .transform((v, ctx) => {
      try {
        return typeof v === "number" ? v : parseDuration(v);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    })
    .pipe(z.number().min(minMs, `must be at least ${minMs} ms`).max(maxMs, `must be at most ${maxMs} ms`));

const bytes = (min: number): z.ZodType<number> =>
  z
    .union([z.number().int(), z.string()])
    .transform((v, ctx) => {
      try {
        return typeof v === "number" ? v : parseBytes(v);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    })
    .pipe(z.number().min(min, `must be at least ${min} bytes`));

export const AGENT_KEYS: Readonly<Record<string, KeySpec>> = {
  "log.level": { schema: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]), live: "log.level" },
  "heartbeat.interval": { schema: duration(250, 600_000), live: "heartbeat.interval" },
  "up.maxBytes": { schema: bytes(64 * 1024), live: "up.maxBytes" },
  "up.maxAge": { schema: duration(600_000, 365 * 86_400_000), live: "up.maxAge" },
  "telemetry.interval": { schema: duration(100, 86_400_000) },
  // Bridge settings mirror the bridge's own config schema; the bridge reads them from the app file.
  "bridge.serial": { schema: z.array(z.string().min(1)) },
  "bridge.baudRate": { schema: z.number().int().positive() },
  "bridge.rescanMs": { schema: z.number().int().positive() },
  "bridge.maxFrameBytes": { schema: z.number().int().min(64).max(65536) },
  "bridge.commandTimeoutMs": { schema: z.number().int().positive() },
  "bridge.mqtt": {
    schema: z.looseObject({ listen: z.string().regex(/^[^:\s]*:\d{1,5}$/, "must be HOST:PORT") }),
  },
};

/** First tokens the agent owns: any key under them must be listed in AGENT_KEYS. */
export const AGENT_NAMESPACES: readonly string[] = ["log", "heartbeat", "up", "telemetry", "bridge", "agent"];

export type Validation =
  | { owned: false }
  | { owned: true; ok: true; value: unknown; spec: KeySpec }
  | { owned: true; ok: false; error: string };

export function validateSetting(key: string, value: unknown): Validation {
  const spec = AGENT_KEYS[key];
  if (!spec) {
    const ns = key.split(".")[0] ?? "";
    if (!AGENT_NAMESPACES.includes(ns)) return { owned: false };
    const known = Object.keys(AGENT_KEYS).filter((k) => k.startsWith(`${ns}.`));
    return { owned: true, ok: false, error: `${key}: unknown agent setting (known under ${ns}.: ${known.join(", ") || "none"})` };
  }
  const r = spec.schema.safeParse(value);
  if (!r.success) return { owned: true, ok: false, error: `${key}: ${describeIssues(r.error)}` };
  return { owned: true, ok: true, value: r.data, spec };
}
