import { z } from "zod";
import { Id, Timestamp } from "./common.js";
import { CustomTopicRule, MQTT_PROFILES, MqttProfileName } from "./mcu-profiles.js";

/**
 * Microcontroller wire shapes shared by the firmware bridge (which writes them) and the agent /
 * gateway (which read them). `McuSummary` (schemas/device.ts) is what `local.bridge.mcus` returns.
 */

/** Core-NATS request subject on the leaf: the bridge replies with `McuSummary[]` as JSON. */
export const BRIDGE_MCUS_SUBJECT = "local.bridge.mcus";
/** Core-NATS request subject on the leaf: the bridge replies with its counters (`BridgeStats`). */
export const BRIDGE_STATS_SUBJECT = "local.bridge.stats";
/** `up.<dev>.evt.mcu.<mcu>.online` */
export const McuOnlineEvent = z.object({
  mcu: Id,
  at: Timestamp,
  board: z.string(),
  firmware: z.string(),
  link: z.string(),
});
export type McuOnlineEvent = z.infer<typeof McuOnlineEvent>;

/** `up.<dev>.evt.mcu.<mcu>.offline`; reason e.g. "unplugged", "disconnect", "will", "keepalive". */
export const McuOfflineEvent = z.object({
  mcu: Id,
  at: Timestamp,
  link: z.string(),
  reason: z.string(),
});
export type McuOfflineEvent = z.infer<typeof McuOfflineEvent>;

/** `up.<dev>.evt.mcu.<mcu>.ack.<name>`: the MCU's answer to a command (or the bridge's timeout). */
export const McuAckEvent = z.object({
  mcu: Id,
  id: z.string(),
  name: Id,
  status: z.enum(["ok", "error", "timeout", "undeliverable"]),
  detail: z.string().default(""),
  at: Timestamp,
});
export type McuAckEvent = z.infer<typeof McuAckEvent>;

/**
 * Agent → bridge, a core request on `local.<dev>.mcu.<mcu>.cmd.<name>` (Subjects.localMcuCommand).
 * `payload` is what the MCU receives as the command's arguments. When the MCU is offline the bridge
 * holds the request up to `waitMs` for it to come back (sleepy MCUs) before answering `offline`.
 */
export const McuCommandRequest = z.object({
  id: Id,
  payload: z.string().max(4096).default(""),
  waitMs: z.number().int().nonnegative().max(300_000).default(0),
  /** How long the MCU has to ack once the command was written to it. */
  ackTimeoutMs: z.number().int().min(100).max(300_000).default(10_000),
});
export type McuCommandRequest = z.infer<typeof McuCommandRequest>;
export type McuCommandRequestInput = z.input<typeof McuCommandRequest>;

/**
 * Bridge → agent. `ok`/`error`: the MCU's ack and its detail; `timeout`: written, no ack in time;
 * `offline`: a known MCU did not come back within `waitMs`; `unknown`: the bridge never saw this MCU;
 * `undeliverable`: the link refused the write (detail says why).
 */
export const McuCommandResult = z.object({
  id: z.string(),
  status: z.enum(["ok", "error", "timeout", "offline", "unknown", "undeliverable"]),
  detail: z.string().default(""),
});
export type McuCommandResult = z.infer<typeof McuCommandResult>;

/**
 * A command's arguments as the MCU sees them: `payload` (a string) verbatim; otherwise the remaining
 * arguments as compact JSON, or nothing when there are none (`blink` → `cmd 7 blink`).
 */
export function mcuPayload(args: Record<string, unknown>): string {
  const { payload, ...rest } = args;
  if (typeof payload === "string") return payload;
  if (payload !== undefined) return JSON.stringify(payload);
  return Object.keys(rest).length === 0 ? "" : JSON.stringify(rest);
}

/** The `bridge:` section of the agent's config, and what `canopy bridge` builds from its flags. */
export const BridgeConfig = z.object({
  /** Serial ports: `PATH[:BAUD]`; PATH may hold `*`/`?` in its last segment (hot-plug rescanned). */
  serial: z.array(z.string().min(1)).default([]),
  /** Default baud rate for ports that do not name one. */
  baudRate: z.number().int().positive().default(115200),
  /** How often glob paths are rescanned for newly plugged ports. */
  rescanMs: z.number().int().positive().default(1000),
  /** Largest decoded binary frame / text line, bytes. */
  maxFrameBytes: z.number().int().min(64).max(65536).default(1024),
  mqtt: z
    .object({
      /** host:port to listen on. */
      listen: z.string().regex(/^[^:\s]*:\d{1,5}$/, "must be HOST:PORT"),
      /** username → scrypt hash (`canopy bridge hash-password`), for any client id. Per-MCU creds live on the device. */
      users: z.record(z.string(), z.string()).default({}),
      /** Topic profiles accepted (all by default); remote config may narrow them. */
      profiles: z.array(MqttProfileName).min(1).default([...MQTT_PROFILES]),
      /** Rules of the `custom` profile. */
      custom: z.array(CustomTopicRule).max(64).default([]),
      /** Accept clients without credentials. Development only: the bridge logs a warning while it is on. */
      anonymous: z.boolean().default(false),
      maxPacketBytes: z.number().int().min(1024).default(64 * 1024),
      /** Sockets open at once, authenticated or not. */
      maxConnections: z.number().int().min(1).max(10_000).default(256),
      /** Received-but-unstored publish bytes of all connections together before reading pauses. */
      maxBufferedBytes: z.number().int().min(64 * 1024).default(16 * 1024 * 1024),
      /** Bytes of received-but-not-yet-acked publishes per connection before reading pauses. */
      maxInflightBytes: z.number().int().min(1024).default(1024 * 1024),
      /** Advertised to MQTT 5 clients and enforced (0x93). 65535 = the spec default; the byte cap still bounds memory. */
      receiveMaximum: z.number().int().min(1).max(65535).default(65535),
      connectTimeoutMs: z.number().int().positive().default(10_000),
    })
    .optional(),
  /** MCUs the registry remembers (online or not); beyond it the one offline longest is forgotten. */
  maxMcus: z.number().int().min(1).max(4096).default(128),
  /** How long the bridge waits for an MCU's command ack before reporting a timeout. */
  commandTimeoutMs: z.number().int().positive().default(30_000),
});
export type BridgeConfig = z.infer<typeof BridgeConfig>;
export type BridgeConfigInput = z.input<typeof BridgeConfig>;
