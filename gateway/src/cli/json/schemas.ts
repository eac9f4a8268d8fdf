import { z } from "zod";

/**
 * The shapes `--json` prints, as zod schemas: tests validate real output against them, and
 * docs/schemas/*.json are generated from them (z.toJSONSchema), so the documentation cannot drift.
 * Conventions: `device` names the device id; times are ISO 8601 strings with a sibling `…AgeMs`,
 * or epoch milliseconds where a stored record carries them (`createdAt`, `at`).
 */
const Iso = z.iso.datetime();

export const TailRecordJson = z.object({
  device: z.string(),
  subject: z.string(),
  seq: z.number().int().nullable().describe("sequence in the device's own UP stream"),
  shardSeq: z.number().int(),
  shard: z.string(),
  time: Iso,
  ageMs: z.number().int(),
  headers: z.record(z.string(), z.string()),
  payload: z.string(),
  encoding: z.enum(["utf8", "base64"]),
});

export const DeviceJson = z.looseObject({
  device: z.string(),
  id: z.string().describe("same as device (kept for older scripts)"),
  groups: z.array(z.string()),
  online: z.boolean(),
  lastSeenMs: z.number().nullable().describe("age of the last heartbeat, ms"),
  status: z.looseObject({}).nullable(),
});

export const BacklogJson = z.object({
  device: z.string(),
  online: z.boolean(),
  shard: z.string().nullable(),
  pending: z.number().nullable(),
  pendingBytes: z.number().nullable(),
  asOfMs: z.number().nullable(),
  deviceSeq: z.number().nullable(),
  hubSeq: z.number().nullable(),
  lastReceived: Iso.nullable(),
  lastReceivedAgeMs: z.number().nullable(),
  discarded: z.number(),
  source: z.object({ lag: z.number(), activeAgoMs: z.number(), error: z.string().optional() }).nullable(),
});

export const ConfigShowJson = z.object({
  device: z.string(),
  groups: z.array(z.string()),
  online: z.boolean(),
  revision: z.number().int(),
  appliedRevision: z.number().int().nullable(),
  failed: z.number().int(),
  pending: z.number().int(),
  keys: z.array(
    z.object({
      key: z.string(),
      value: z.json(),
      source: z.string(),
      revision: z.number().int().nullable().describe("the source layer's revision: what config set printed"),
      renderedRevision: z.number().int(),
      applied: z.looseObject({ revision: z.number(), status: z.enum(["applied", "failed"]) }).nullable(),
      inSync: z.boolean(),
      status: z.enum(["applied", "failed", "pending"]),
    }),
  ),
});

export const ConfigSetJson = z.looseObject({
  key: z.string(),
  layer: z.string(),
  value: z.json(),
  revision: z.number().int(),
  render: z.object({ devices: z.number(), written: z.number(), removed: z.number() }),
});

export const DoctorJson = z.object({
  ok: z.boolean(),
  problems: z.number().int(),
  warnings: z.number().int(),
  checks: z.array(
    z.object({
      scope: z.string().describe("hub or device:<id>"),
      device: z.string().optional(),
      check: z.string(),
      status: z.enum(["ok", "warn", "fail"]),
      detail: z.string(),
    }),
  ),
});

export const ContextJson = z.object({
  name: z.string(),
  selected: z.boolean(),
  server: z.string(),
  creds: z.string().optional(),
  ca: z.string().optional(),
  description: z.string().optional(),
  removed: z.boolean().optional(),
});

export const HubStatusJson = z.object({
  canopy: z.string(),
  server: z.string(),
  natsServer: z.object({ version: z.string(), name: z.string(), id: z.string() }),
  security: z.object({ authRequired: z.boolean(), tlsRequired: z.boolean() }),
  jetstream: z.object({ domain: z.string().nullable(), streams: z.number(), consumers: z.number(), storageBytes: z.number() }),
  devices: z.object({ enrolled: z.number(), online: z.number() }),
  shards: z.array(z.string()),
  rttMs: z.number(),
});

export const PubJson = z.object({
  device: z.string(),
  subject: z.string(),
  stream: z.string(),
  seq: z.number().int(),
  duplicate: z.boolean(),
  leaf: z.string(),
});

/** Name → schema, for docs/schemas/<name>.json. */
export const CLI_JSON_SCHEMAS = {
  "tail-record": TailRecordJson,
  device: DeviceJson,
  backlog: BacklogJson,
  "config-show": ConfigShowJson,
  "config-set": ConfigSetJson,
  doctor: DoctorJson,
  context: ContextJson,
  "hub-status": HubStatusJson,
  pub: PubJson,
} as const;
