import type { NatsConnection } from "@nats-io/transport-node";
import {
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  DiscardPolicy,
  StorageType,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { Kvm, type KvOptions } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { Assets, Backoff, sleep } from "@canopy/protocol";
import { LIMITS_KEY, type HubStreamLimits } from "./limits.js";

const DAY_NS = 86_400e9;

export interface HubLimits {
  /** Longest command TTL: the CMD stream's max_age. */
  commandMaxAgeDays: number;
  /**
   * The stream bounds `hub start` was given: recorded in KV `shards` (every shard, also one a CLI
   * `device add` creates, gets them) and applied to CMD, also to an existing one.
   */
  streams?: HubStreamLimits;
}

/**
 * Creates the hub's assets if they are missing; safe to run on every start and from several gateways.
 * KV buckets with history keep what the issues need to reconstruct (config layers: 64 revisions).
 * `replicas` (3 on a 3-node cluster, see cluster.ts) applies to every stream and bucket; an asset that
 * has fewer (a single hub grown into a cluster) is raised to it. Left out, it is what the hub already
 * has (the devices bucket), else 3 when the server is in a cluster, else 1.
 */
export async function provisionHub(nc: NatsConnection, limits: HubLimits = { commandMaxAgeDays: 30 }, replicas?: number): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const r = replicas ?? (await hubReplicas(nc, jsm));
  const kvm = new Kvm(nc);
  const bucket = async (name: string, opts: Partial<KvOptions>): Promise<void> => {
    if (!(await raiseReplicas(jsm, `KV_${name}`, r))) await kvm.create(name, { ...opts, replicas: r });
  };
  await bucket(Assets.kvDevices, { history: 5 });
  await bucket(Assets.kvStatus, { history: 1 });
  // Compact heartbeats: rewritten every few seconds by every device and worth nothing after a
  // restart (readers fall back to the status record's time), so kept in memory, not on disk.
  await bucket(Assets.kvBeat, { history: 1, storage: StorageType.Memory });
  await bucket(Assets.kvConfigSource, { history: 64 });
  await bucket(Assets.kvConfig, { history: 16 });
  // The renderer writes a fleet or group change to every device's key as atomic batches (one commit
  // for hundreds of compare-and-set writes; see config/render.ts).
  const cfgStream = (await jsm.streams.info(`KV_${Assets.kvConfig}`)).config;
  if (!cfgStream.allow_atomic) await jsm.streams.update(cfgStream.name, { ...cfgStream, allow_atomic: true });
  await bucket(Assets.kvShards, { history: 5 });
  await bucket(Assets.kvLeases, { history: 1, ttl: 60_000 });
  await bucket(Assets.kvRollouts, { history: 16 });
  await bucket(Assets.kvCommands, { history: 1, ttl: limits.commandMaxAgeDays * 86_400_000 });
  await bucket(Assets.kvIdentity, { history: 1 });

  const s = limits.streams;
  const cmdMaxAge = (s ? s.cmdMaxAgeMs / 86_400_000 : limits.commandMaxAgeDays) * DAY_NS;
  if (!(await raiseReplicas(jsm, Assets.cmdStream, r))) {
    await jsm.streams.add({
      name: Assets.cmdStream,
      subjects: ["cmd.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: cmdMaxAge,
      ...(s ? { max_bytes: s.cmdMaxBytes } : {}),
      duplicate_window: 3_600e9,
      num_replicas: r,
    });
  } else if (s) {
    const current = (await jsm.streams.info(Assets.cmdStream)).config;
    if (current.max_bytes !== s.cmdMaxBytes || current.max_age !== cmdMaxAge) {
      await jsm.streams.update(Assets.cmdStream, { ...current, max_bytes: s.cmdMaxBytes, max_age: cmdMaxAge });
    }
  }
  if (s) await (await kvm.open(Assets.kvShards)).put(LIMITS_KEY, JSON.stringify(s));
  if (!(await raiseReplicas(jsm, `OBJ_${Assets.objFirmware}`, r))) {
    await new Objm(nc).create(Assets.objFirmware, { storage: StorageType.File, replicas: r });
  }
  return r;
}

/**
 * The replica count of the hub's assets: that of the devices bucket when it exists; otherwise 3
 * when the server we talk to is in a cluster (its INFO names one), else 1.
 */
export async function hubReplicas(nc: NatsConnection, jsm?: JetStreamManager): Promise<number> {
  const m = jsm ?? (await jetstreamManager(nc));
  try {
    return (await m.streams.info(`KV_${Assets.kvDevices}`)).config.num_replicas || 1;
  } catch {
    return nc.info?.cluster ? 3 : 1;
  }
}

/** True when the stream exists (its replicas raised to `replicas` if it had fewer). */
export async function raiseReplicas(jsm: JetStreamManager, stream: string, replicas: number): Promise<boolean> {
  let config;
  try {
    config = (await jsm.streams.info(stream)).config;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  if ((config.num_replicas || 1) < replicas) await jsm.streams.update(stream, { ...config, num_replicas: replicas });
  return true;
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * provisionHub, retried with backoff until it succeeds or `signal` aborts: a cluster node that starts
 * first has no JetStream quorum (no meta leader) until a second node joins.
 */
export async function provisionWhenReady(
  nc: NatsConnection,
  replicas: number,
  log: { warn(o: object, msg: string): void },
  signal: AbortSignal,
  streams?: HubStreamLimits,
): Promise<boolean> {
  const backoff = new Backoff({ initialMs: 250, maxMs: 5_000 });
  for (;;) {
    try {
      await provisionHub(nc, { commandMaxAgeDays: 30, ...(streams ? { streams } : {}) }, replicas);
      return true;
    } catch (err) {
      log.warn({ err: (err as Error).message, attempt: backoff.attempts + 1 }, "hub assets not provisioned yet (JetStream cluster not ready?); retrying");
    }
    if (!(await sleep(backoff.next(), signal))) return false;
  }
}
