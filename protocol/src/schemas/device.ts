import { z } from "zod";
import { Id, Timestamp } from "./common.js";
import { ConfigKeyState } from "./config.js";

/** KV `devices`: the registry, one key per device id. */
export const DeviceRecord = z.object({
  id: Id,
  groups: z.array(Id).default([]),
  created: Timestamp,
  /** Hub shard stream that sources this device's UP. */
  shard: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
export type DeviceRecord = z.infer<typeof DeviceRecord>;

/** Inventory facts the agent samples (OS/CPU names by systeminformation, the rest from /proc and /sys). Every field optional: boards differ. */
export const Facts = z.object({
  os: z
    .object({
      platform: z.string(),
      distro: z.string(),
      release: z.string(),
      arch: z.string(),
      kernel: z.string(),
      hostname: z.string(),
    })
    .partial()
    .default({}),
  cpu: z
    .object({ model: z.string(), cores: z.number(), load: z.number(), temperature: z.number() })
    .partial()
    .default({}),
  mem: z.object({ total: z.number(), available: z.number(), used: z.number() }).partial().default({}),
  disk: z.object({ total: z.number(), available: z.number(), used: z.number() }).partial().default({}),
  net: z
    .object({
      interfaces: z.array(z.object({ name: z.string(), ip4: z.string(), mac: z.string() }).partial()),
    })
    .partial()
    .default({}),
  uptime: z.number().optional(),
});
export type Facts = z.infer<typeof Facts>;

export const UpBacklog = z.object({
  messages: z.number(),
  bytes: z.number(),
  firstSeq: z.number(),
  lastSeq: z.number(),
  /** Messages the hub's source consumer has not yet taken, as the leaf sees it. */
  pending: z.number().optional(),
  /** Count of messages discarded because UP was full (never silent). */
  discarded: z.number().default(0),
});
export type UpBacklog = z.infer<typeof UpBacklog>;

export const McuSummary = z.object({
  id: Id,
  board: z.string(),
  firmware: z.string(),
  link: z.string(),
  online: z.boolean(),
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  /** sha256 of the image the MCU runs, when Canopy flashed it. */
  imageSha256: z.string().optional(),
  /** The last flash: state, version, when, why (schemas/firmware.ts McuFlashRecord). */
  lastFlash: z.object({ state: z.string(), version: z.string(), sha256: z.string(), at: Timestamp, detail: z.string() }).optional(),
});
export type McuSummary = z.infer<typeof McuSummary>;

/** KV `status`: presence and last-known state, written by the agent through the hub domain. */
export const DeviceStatus = z.object({
  id: Id,
  /** When the agent wrote this record (device clock). */
  at: Timestamp,
  /** Agent heartbeat interval: the reader marks a device offline after 3 missed beats. */
  heartbeatMs: z.number().int().positive(),
  startedAt: Timestamp,
  /** "stopping" is written on a clean shutdown so the device shows offline at once. */
  state: z.enum(["online", "stopping"]).default("online"),
  groups: z.array(Id).default([]),
  agent: z.object({ version: z.string(), pid: z.number().optional() }),
  natsServer: z.object({ version: z.string() }).partial().default({}),
  /** The device's local leaf client URL (where its apps publish; reachable on the device itself). */
  /** The device's leaf nats-server: where the agent reaches it, and its link and durability settings. */
  leaf: z.object({ url: z.string(), compression: z.string().max(32), syncInterval: z.string().max(32) }).partial().optional(),
  facts: Facts.optional(),
  up: UpBacklog.optional(),
  config: z
    .object({ revision: z.number(), appliedAt: Timestamp.optional(), keys: z.record(z.string(), ConfigKeyState).optional() })
    .partial()
    .optional(),
  mcus: z.array(McuSummary).optional(),
  /** The data partition: `full` while free space is below the floor or the leaf's JetStream is down. */
  storage: z
    .object({ full: z.boolean(), freeBytes: z.number(), totalBytes: z.number(), reason: z.string().optional(), since: Timestamp.optional() })
    .optional(),
  /** Device clock minus hub clock, measured by the agent (absent until measured). */
  clock: z.object({ skewMs: z.number(), rttMs: z.number() }).optional(),
});
export type DeviceStatus = z.infer<typeof DeviceStatus>;

/**
 * KV `beat`: the compact heartbeat (issue 15, fleet scale). The full `status` record is written only
 * when its content changes (or at a long refresh interval); in between, a device proves it is alive
 * with this small record under its own key in a memory-backed bucket, with the UP backlog counters
 * (the one part of the status that moves with every reading). Readers take "last seen" as the newer
 * of the two entries' hub timestamps, and `up` from the newer one.
 */
export const DeviceBeat = z.object({
  /** When the agent wrote it (device clock; readers use the hub's receive time). */
  at: Timestamp,
  heartbeatMs: z.number().int().positive(),
  up: UpBacklog.optional(),
});
export type DeviceBeat = z.infer<typeof DeviceBeat>;

export const MISSED_HEARTBEATS_OFFLINE = 3;

/** Online when the last heartbeat is younger than 3 intervals and the agent did not sign off. */
export function isOnline(s: Pick<DeviceStatus, "at" | "heartbeatMs" | "state">, now = Date.now()): boolean {
  return s.state !== "stopping" && now - s.at < MISSED_HEARTBEATS_OFFLINE * s.heartbeatMs;
}
