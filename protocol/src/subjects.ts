import { checkId, checkTokenPath } from "./ids.js";

/**
 * Every subject and JetStream asset name Canopy uses, built from validated ids only.
 * Device subjects always start with the device id so a device's permissions and its local
 * streams can be scoped to `up.<dev>.>` / `cmd.<dev>.>` (see DESIGN.md).
 */
export const HUB_DOMAIN = "hub";

export const Assets = {
  /** Leaf: device upstream store-and-forward. */
  upStream: "UP",
  /** Hub: shards that source many devices' UP. */
  fleetUpShard: (n: number): string => `FLEET_UP_${n}`,
  fleetUpShardPrefix: "FLEET_UP_",
  /** Hub stream, and its filtered mirror on each leaf. */
  cmdStream: "CMD",
  /** Durable consumer of the leaf CMD mirror. */
  cmdConsumer: "agent",
  kvDevices: "devices",
  kvStatus: "status",
  /** Compact heartbeats between full status records (memory storage, history 1). */
  kvBeat: "beat",
  kvConfigSource: "cfg-src",
  kvConfig: "cfg",
  /** Gateway bookkeeping: shard membership, leases, rollouts, command index. */
  kvShards: "shards",
  kvLeases: "leases",
  kvRollouts: "rollouts",
  kvCommands: "commands",
  /** Gateway identity bookkeeping: per device, the user keys minted and not yet revoked. */
  kvIdentity: "identity",
  objFirmware: "firmware",
} as const;

export const Subjects = {
  /** All upstream traffic of one device: what its UP stream captures. */
  upAll: (dev: string): string => `up.${checkId(dev, "device id")}.>`,
  telemetry: (dev: string, suffix: string): string =>
    `up.${checkId(dev, "device id")}.tlm.${checkTokenPath(suffix, "subject suffix")}`,
  event: (dev: string, suffix: string): string =>
    `up.${checkId(dev, "device id")}.evt.${checkTokenPath(suffix, "subject suffix")}`,
  presenceEvent: (dev: string): string => `up.${checkId(dev, "device id")}.evt.presence`,
  upDiscarded: (dev: string): string => `up.${checkId(dev, "device id")}.evt.up.discarded`,
  configEvent: (dev: string): string => `up.${checkId(dev, "device id")}.evt.config`,
  commandResult: (dev: string, cmdId: string): string =>
    `up.${checkId(dev, "device id")}.evt.cmd.${checkId(cmdId, "command id")}`,
  mcuTelemetry: (dev: string, mcu: string, metric: string): string =>
    `up.${checkId(dev, "device id")}.tlm.mcu.${checkId(mcu, "mcu id")}.${checkTokenPath(metric, "metric")}`,
  mcuEvent: (dev: string, mcu: string, suffix: string): string =>
    `up.${checkId(dev, "device id")}.evt.mcu.${checkId(mcu, "mcu id")}.${checkTokenPath(suffix, "subject suffix")}`,

  cmdAll: (dev: string): string => `cmd.${checkId(dev, "device id")}.>`,
  command: (dev: string, name: string): string =>
    `cmd.${checkId(dev, "device id")}.${checkTokenPath(name, "subject suffix")}`,
  mcuCommand: (dev: string, mcu: string, name: string): string =>
    `cmd.${checkId(dev, "device id")}.mcu.${checkId(mcu, "mcu id")}.${checkId(name, "id")}`,

  queryAll: "q.all",
  queryGroup: (group: string): string => `q.group.${checkId(group, "group id")}`,
  queryDevice: (dev: string): string => `q.dev.${checkId(dev, "device id")}`,
  /**
   * Answers: `qr.<dev>.<query id>`. Only device <dev>'s credentials may publish under `qr.<dev>.>`, so
   * the collector takes the device from the subject and a device cannot answer as another.
   */
  queryReplyPrefix: "qr",
  queryReply: (dev: string, queryId: string): string => `qr.${checkId(dev, "device id")}.${checkId(queryId, "id")}`,
  queryReplies: (queryId: string): string => `qr.*.${checkId(queryId, "id")}`,

  /**
   * Leaf-local subjects (`local.>`): nothing on the hub subscribes to or stores them, so they never
   * cross the leaf link. Measured on 2.9.10: a core publish on a leaf to a subject a hub stream
   * captures (e.g. `cmd.>`) IS stored by the hub stream, so agent-to-bridge traffic must not use
   * `cmd.<dev>.…` as a core subject.
   */
  /** The one agent → bridge command subject (core request/reply on the leaf). */
  localMcuCommand: (dev: string, mcu: string, name: string): string =>
    `local.${checkId(dev, "device id")}.mcu.${checkId(mcu, "mcu id")}.cmd.${checkId(name, "id")}`,
  /** What the bridge subscribes to: every MCU command of its device. */
  localMcuCommands: (dev: string): string => `local.${checkId(dev, "device id")}.mcu.*.cmd.*`,
  localBridgeMcus: "local.bridge.mcus",
  /** Agent → bridge: the data partition's state (`{full, freeBytes, reason?}`), core NATS, every disk check. */
  localStorage: "local.storage",
  /** Agent → bridge: flash a downloaded, verified image to one MCU (core request). */
  localMcuFlash: (dev: string, mcu: string): string => `local.${checkId(dev, "device id")}.mcu.${checkId(mcu, "mcu id")}.flash`,
  localMcuFlashes: (dev: string): string => `local.${checkId(dev, "device id")}.mcu.*.flash`,
  mcuFlashEvent: (dev: string, mcu: string): string =>
    `up.${checkId(dev, "device id")}.evt.mcu.${checkId(mcu, "mcu id")}.flash`,

  /** KV subject filter for a device's rendered config (leaf mirror filter). */
  configKvFilter: (dev: string): string => `$KV.${Assets.kvConfig}.${checkId(dev, "device id")}.>`,
  /** Device-app notification on the leaf when non-agent config keys change. */
  localConfigChanged: "local.cfg.changed",

  /** JetStream API prefix of a device's domain, for hub streams that source it. */
  deviceJsApi: (dev: string): string => `$JS.${checkId(dev, "device id")}.API`,
  /** JetStream API prefix of the hub's domain, for the leaf's mirrors. */
  hubJsApi: `$JS.${HUB_DOMAIN}.API`,
  /**
   * Per-device deliver prefixes (never the shared `$JS.S.>` / `$JS.M.>`): the hub's source of a leaf UP
   * delivers on `du.<dev>.…` (leaf → hub), a leaf mirror of a hub asset on `dl.<dev>.…` (hub → leaf), so a
   * device's credentials allow exactly its own.
   */
  sourceDeliver: (dev: string): string => `du.${checkId(dev, "device id")}`,
  mirrorDeliver: (dev: string): string => `dl.${checkId(dev, "device id")}`,
  /** Reply inboxes: a device's own (its creds receive only these) and the operator side's. */
  deviceInboxPrefix: (dev: string): string => `_INBOX.${checkId(dev, "device id")}`,
  hubInboxPrefix: "_INBOX.hub",
  /**
   * The device's own status key in hub KV `status`, as a JetStream publish from the leaf: a leaf link
   * does not carry `$KV.>`, so it goes through the hub domain's prefix (what nats.js KV does too).
   */
  statusPut: (dev: string): string => `$JS.${HUB_DOMAIN}.API.$KV.${Assets.kvStatus}.${checkId(dev, "device id")}`,
  /** Direct get of the device's own status entry: its Nats-Time-Stamp is a sample of the hub's clock. */
  statusGet: (dev: string): string =>
    `$JS.${HUB_DOMAIN}.API.DIRECT.GET.KV_${Assets.kvStatus}.$KV.${Assets.kvStatus}.${checkId(dev, "device id")}`,
  /** The device's own key in hub KV `beat` (compact heartbeat), as a JetStream publish through the hub domain. */
  beatPut: (dev: string): string => `$JS.${HUB_DOMAIN}.API.$KV.${Assets.kvBeat}.${checkId(dev, "device id")}`,
  /** Direct get of the device's own beat entry: a sample of the hub's clock between full status writes. */
  beatGet: (dev: string): string =>
    `$JS.${HUB_DOMAIN}.API.DIRECT.GET.KV_${Assets.kvBeat}.$KV.${Assets.kvBeat}.${checkId(dev, "device id")}`,
  /** Direct get of the device's own registry record in hub KV `devices` (last message of its key). */
  registryGet: (dev: string): string =>
    `$JS.${HUB_DOMAIN}.API.DIRECT.GET.KV_${Assets.kvDevices}.$KV.${Assets.kvDevices}.${checkId(dev, "device id")}`,
  /**
   * "Your registry record changed": a core publish with no body, sent by whoever wrote the record.
   * The agent then re-reads its record (registryGet) instead of polling it every few seconds.
   */
  registryNotice: (dev: string): string => `reg.${checkId(dev, "device id")}`,
  /** The gateway's identity service (admin credentials only): mint and revoke device credentials. */
  identityMint: "canopy.identity.mint",
  identityRevoke: "canopy.identity.revoke",
} as const;

/** Config KV keys. Layers in `cfg-src`; rendered per-device keys in `cfg`. */
export const ConfigKeys = {
  fleet: (key: string): string => `fleet.${checkTokenPath(key)}`,
  group: (group: string, key: string): string => `group.${checkId(group, "group id")}.${checkTokenPath(key)}`,
  device: (dev: string, key: string): string => `device.${checkId(dev, "device id")}.${checkTokenPath(key)}`,
  rendered: (dev: string, key: string): string => `${checkId(dev, "device id")}.${checkTokenPath(key)}`,
} as const;

/**
 * `Nats-Msg-Id` for messages Canopy publishes upstream: `<dev>:<seq>`, seq persisted on the device.
 * Several publishers share one device's UP stream (agent, bridge, apps), each with its own sequence,
 * so all but the first name themselves: `<dev>:<publisher>:<seq>` keeps their ids from colliding.
 */
export function upstreamMsgId(dev: string, seq: number | bigint, publisher?: string): string {
  const d = checkId(dev, "device id");
  return publisher === undefined ? `${d}:${seq}` : `${d}:${checkId(publisher, "id")}:${seq}`;
}
