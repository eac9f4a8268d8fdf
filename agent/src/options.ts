import { isAbsolute, resolve } from "node:path";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { CanopyError, DEFAULT_LEAF_SYNC_INTERVAL, ErrorCode, Id, describeIssues, parseBytes, parseDuration } from "@canopy/protocol";
import { DEFAULT_UP_LIMITS } from "./up/stream.js";
import { DEFAULT_EXEC_ALLOW_FILE } from "./commands/handlers/exec-allow.js";
import { storeEnrollment, storedEnrollment, type Enrollment } from "./identity/enroll.js";
import type { EnrollBundle } from "@canopy/protocol";

/** A positive number, or text that `parse` turns into one ("5s", "256MiB"); its error names the field. */
function unitValue(parse: (text: string) => number) {
  return z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
    try {
      return typeof v === "number" ? v : parse(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });
}
const Duration = unitValue((t) => parseDuration(t));
const Bytes = unitValue((t) => parseBytes(t));

/**
 * One schema for the agent's settings: CLI flags, an optional JSON config file, and env overrides
 * (CANOPY_DEVICE, CANOPY_HUB, CANOPY_DATA, CANOPY_AGENT_HEARTBEAT) all land here; errors name the bad field.
 */
export const AgentOptionsSchema = z.object({
  device: Id,
  hub: z.array(z.string().regex(/^nats-leaf:\/\/[^\s]+$/, "must be nats-leaf://HOST:PORT")).min(1),
  data: z.string().min(1).transform((p) => resolve(p)),
  port: z.number().int().min(-1).max(65535).default(4223),
  httpPort: z.number().int().min(-1).max(65535).optional(),
  /** Prometheus /metrics on 127.0.0.1:<port> (0 or -1 = any free port); off when absent. */
  metricsPort: z.number().int().min(-1).max(65535).optional(),
  heartbeat: Duration.default(5_000),
  maxFileStore: Bytes.default(1024 ** 3),
  up: z
    .object({
      maxBytes: Bytes.default(DEFAULT_UP_LIMITS.maxBytes),
      maxAge: Duration.default(DEFAULT_UP_LIMITS.maxAgeMs),
      duplicateWindow: Duration.default(DEFAULT_UP_LIMITS.duplicateWindowMs),
    })
    .default({ maxBytes: DEFAULT_UP_LIMITS.maxBytes, maxAge: DEFAULT_UP_LIMITS.maxAgeMs, duplicateWindow: DEFAULT_UP_LIMITS.duplicateWindowMs }),
  /** Run `canopy bridge` for this device's MCUs as a supervised child. */
  bridge: z
    .object({
      serial: z.array(z.string()).default([]),
      /** `HOST:PORT`, or the listener with options (`profiles` narrows the topic profiles; `anonymous` is for development). */
      mqtt: z
        .union([
          z.string(),
          z.object({
            listen: z.string(),
            profiles: z.array(z.enum(["canopy", "tasmota", "esphome", "shelly", "custom"])).min(1).optional(),
            anonymous: z.boolean().default(false),
          }).strict(),
        ])
        .optional(),
    })
    .optional(),
  /** The leaf nats-server's durability and link settings (see protocol renderLeafConfig). */
  leaf: z
    .object({
      /** "always" = fsync before every ack (survives a power cut); "<n>ms|s" leaves that window unsynced. */
      syncInterval: z.string().regex(/^(always|[1-9]\d*(ms|s))$/, 'must be "always" or a duration like "500ms" / "1s"').default(DEFAULT_LEAF_SYNC_INTERVAL),
      compression: z.enum(["s2_auto", "s2_fast", "s2_better", "s2_best", "off"]).default("s2_auto"),
    })
    .default({ syncInterval: DEFAULT_LEAF_SYNC_INTERVAL, compression: "s2_auto" }),
  credentials: z.string().optional(),
  /** Leaf-link TLS (client certificate, fleet CA), from the enrollment. */
  tls: z.object({ certFile: z.string(), keyFile: z.string(), caFile: z.string() }).optional(),
  /** Scripts the `exec` command may run, besides those in `execAllowFile` (remote config can only narrow). */
  allowExec: z.array(z.string().refine(isAbsolute, "must be an absolute path")).default([]),
  /** The device's own exec allowlist: a root-owned file, one absolute path per line. */
  execAllowFile: z.string().refine(isAbsolute, "must be an absolute path").default(DEFAULT_EXEC_ALLOW_FILE),
});
export type AgentOptions = z.output<typeof AgentOptionsSchema>;
/** Before enrollment fills them in, device and hub may be missing. */
const RawOptionsSchema = AgentOptionsSchema.extend({ device: Id.optional(), hub: AgentOptionsSchema.shape.hub.optional() });
export type AgentOptionsInput = z.input<typeof AgentOptionsSchema>;

/** Merges config file < env < flags, validates, and throws INVALID_INPUT naming the field. */
export function loadAgentOptions(
  flags: { [K in keyof AgentOptionsInput]?: AgentOptionsInput[K] | undefined },
  configFile?: string,
  bundle?: EnrollBundle,
): AgentOptions {
  let file: Record<string, unknown> = {};
  if (configFile) {
    try {
      file = JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new CanopyError(ErrorCode.InvalidInput, `cannot read config ${configFile}: ${(err as Error).message}`);
    }
  }
  const env: Record<string, unknown> = {};
  const e = process.env;
  if (e.CANOPY_DEVICE) env.device = e.CANOPY_DEVICE;
  if (e.CANOPY_HUB) env.hub = e.CANOPY_HUB.split(",");
  if (e.CANOPY_DATA) env.data = e.CANOPY_DATA;
  if (e.CANOPY_AGENT_HEARTBEAT) env.heartbeat = e.CANOPY_AGENT_HEARTBEAT;
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const merged: Record<string, unknown> = { ...file, ...env, ...defined };
  if (merged.data === undefined) {
    throw new CanopyError(
      ErrorCode.InvalidInput,
      "missing --data DIR: an agent needs a data directory, and an enrollment (--bundle FILE or --join TOKEN) or --device ID --hub nats-leaf://HOST:PORT " +
        "(or a --config file with those fields; or CANOPY_DATA, CANOPY_DEVICE, CANOPY_HUB). See 'canopy agent --help'",
    );
  }
  const r = RawOptionsSchema.safeParse(merged);
  if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, `agent options: ${describeIssues(r.error)}`);
  return withEnrollment(r.data, bundle);
}

/**
 * Device id, hub URLs and credentials come from the enrollment (a new bundle, else the stored one);
 * `--device` / `--hub` still work and `--hub` wins (a test relays the link through a proxy).
 */
function withEnrollment(o: z.output<typeof RawOptionsSchema>, bundle: EnrollBundle | undefined): AgentOptions {
  if (bundle && o.device !== undefined && o.device !== bundle.device) {
    throw new CanopyError(ErrorCode.InvalidInput, `--device ${o.device} does not match the bundle's device ${bundle.device}`);
  }
  const e: Enrollment | undefined = bundle ? storeEnrollment(o.data, bundle) : storedEnrollment(o.data);
  if (e && o.device !== undefined && o.device !== e.device) {
    throw new CanopyError(ErrorCode.InvalidInput, `${o.data} is enrolled as ${e.device}, not ${o.device}; use another --data or enroll again with --bundle`);
  }
  const device = o.device ?? e?.device;
  const hub = o.hub ?? e?.hub;
  if (!device) throw new CanopyError(ErrorCode.InvalidInput, "agent options: no device id: enroll with --bundle FILE or --join TOKEN (or give --device)");
  if (!hub) throw new CanopyError(ErrorCode.InvalidInput, "agent options: no hub URL: enroll with --bundle FILE or --join TOKEN (or give --hub)");
  return {
    ...o,
    device,
    hub,
    ...(e ? { credentials: o.credentials ?? e.credentialsFile } : {}),
    ...(e?.tls && !o.tls ? { tls: e.tls } : {}),
  };
}
