import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, RetentionPolicy, DiscardPolicy, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { Assets } from "@canopy/protocol";

const DAY_NS = 86_400e9;

export interface HubLimits {
  /** Longest command TTL: the CMD stream's max_age. */
  commandMaxAgeDays: number;
}

/**
 * Creates the hub's assets if they are missing; safe to run on every start and from several gateways.
 * KV buckets with history keep what the issues need to reconstruct (config layers: 64 revisions).
 */
export async function provisionHub(nc: NatsConnection, limits: HubLimits = { commandMaxAgeDays: 30 }): Promise<void> {
  const kvm = new Kvm(nc);
  await kvm.create(Assets.kvDevices, { history: 5 });
  await kvm.create(Assets.kvStatus, { history: 1 });
  await kvm.create(Assets.kvConfigSource, { history: 64 });
  await kvm.create(Assets.kvConfig, { history: 16 });
  await kvm.create(Assets.kvShards, { history: 5 });
  await kvm.create(Assets.kvLeases, { history: 1, ttl: 60_000 });
  await kvm.create(Assets.kvRollouts, { history: 16 });
  await kvm.create(Assets.kvCommands, { history: 1, ttl: limits.commandMaxAgeDays * 86_400_000 });

  const jsm = await jetstreamManager(nc);
  const cmd = {
    name: Assets.cmdStream,
    subjects: ["cmd.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: limits.commandMaxAgeDays * DAY_NS,
    duplicate_window: 3_600e9,
  };
  try {
    await jsm.streams.info(Assets.cmdStream);
  } catch {
    await jsm.streams.add(cmd);
  }
  await new Objm(nc).create(Assets.objFirmware, { storage: StorageType.File });
}
