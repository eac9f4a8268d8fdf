import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig, type StreamSource } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Assets, CanopyError, ErrorCode, Subjects, checkId } from "@canopy/protocol";
import { isCasConflict } from "../kv/read.js";
import { readHubLimits, type HubStreamLimits } from "../hub/limits.js";

/**
 * Hub shards `FLEET_UP_<n>` each source at most `shardSize` devices' UP streams. Membership lives in
 * KV `shards` (one key per shard) and changes only by compare-and-set, so concurrent `device add`s
 * never lose a source; the stream's source list is then made equal to the record (re-checked until
 * the record did not move underneath), which also repairs any drift.
 */
export interface ShardRecord {
  devices: string[];
  /**
   * Devices connected straight to the hub, without a leaf of their own (`canopy sim fleet --commands`):
   * the shard captures their `up.<dev>.>` publishes itself (stream subjects) instead of sourcing a
   * leaf UP. Such a shard takes no assigned devices.
   */
  direct?: string[];
}

export interface ShardOptions {
  shardSize: number;
  retentionDays: number;
  /** JetStream replicas of shard streams: those of the hub's own buckets (3 on a cluster). */
  replicas: number;
  /** max_bytes / max_age of every shard, as `hub start` recorded them (KV `shards`, key `limits`). */
  limits?: HubStreamLimits;
}

export const DEFAULT_SHARD_SIZE = 2_000;
const MAX_CAS_ATTEMPTS = 64;

export class Shards {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly opts: ShardOptions,
  ) {}

  static async open(nc: NatsConnection, opts: Partial<ShardOptions> = {}): Promise<Shards> {
    const kv = await new Kvm(nc).open(Assets.kvShards);
    const limits = opts.limits ?? (await readHubLimits(kv));
    return new Shards(nc, kv, {
      shardSize: opts.shardSize ?? DEFAULT_SHARD_SIZE,
      retentionDays: opts.retentionDays ?? 90,
      replicas: opts.replicas ?? ((await kv.status()).replicas || 1),
      ...(limits ? { limits } : {}),
    });
  }

  async list(): Promise<Array<{ name: string; revision: number; record: ShardRecord }>> {
    const names: string[] = [];
    for await (const k of await this.kv.keys()) if (k.startsWith(Assets.fleetUpShardPrefix)) names.push(k);
    names.sort((a, b) => shardIndex(a) - shardIndex(b));
    const out = [];
    for (const name of names) {
      const e = await this.kv.get(name);
      if (e && e.operation === "PUT") out.push({ name, revision: e.revision, record: e.json<ShardRecord>() });
    }
    return out;
  }

  async shardOf(device: string): Promise<string | undefined> {
    return (await this.list()).find((s) => s.record.devices.includes(device))?.name;
  }

  /** Puts the device in the first shard with room (or a new one) and syncs that shard's sources. */
  async assign(device: string): Promise<string> {
    checkId(device, "device id");
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const shards = await this.list();
      const existing = shards.find((s) => s.record.devices.includes(device));
      if (existing) {
        await this.sync(existing.name);
        return existing.name;
      }
      const room = shards.find((s) => !s.record.direct?.length && s.record.devices.length < this.opts.shardSize);
      try {
        if (room) {
          const next: ShardRecord = { devices: [...room.record.devices, device] };
          await this.kv.update(room.name, JSON.stringify(next), room.revision);
          await this.sync(room.name);
          return room.name;
        }
        const n = shards.length === 0 ? 0 : Math.max(...shards.map((s) => shardIndex(s.name))) + 1;
        const name = Assets.fleetUpShard(n);
        await this.kv.create(name, JSON.stringify({ devices: [device] } satisfies ShardRecord));
        await this.sync(name);
        return name;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
    throw new CanopyError(ErrorCode.Conflict, `could not assign ${device} to a shard: too much contention`);
  }

  async unassign(device: string): Promise<string | undefined> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const shard = (await this.list()).find((s) => s.record.devices.includes(device));
      if (!shard) return undefined;
      const next: ShardRecord = { devices: shard.record.devices.filter((d) => d !== device) };
      try {
        await this.kv.update(shard.name, JSON.stringify(next), shard.revision);
        await this.sync(shard.name);
        return shard.name;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
    throw new CanopyError(ErrorCode.Conflict, `could not remove ${device} from its shard: too much contention`);
  }

  /** Makes the shard stream's sources equal to its KV record, re-reading until the record is stable. */
  async sync(name: string): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const before = await this.kv.get(name);
      if (!before) return;
      const record: ShardRecord = before.operation === "PUT" ? before.json<ShardRecord>() : { devices: [] };
      const sources = record.devices.map(deviceSource);
      const subjects = (record.direct ?? []).map((d) => Subjects.upAll(d));
      let current: StreamConfig | undefined;
      try {
        current = (await jsm.streams.info(name)).config;
      } catch {
        current = undefined;
      }
      if (!current) {
        await jsm.streams.add({ ...this.shardConfig(name, sources), ...(subjects.length ? { subjects } : {}) }).catch(async (err) => {
          // Another gateway created it first: fall through to an update on the next pass.
          if (!/already in use|exists/i.test((err as Error).message)) throw err;
        });
      } else if (!sameSources(current.sources ?? [], sources) || !this.hasLimits(current) || !sameSet(current.subjects ?? [], subjects)) {
        await jsm.streams.update(name, { ...current, sources, ...(subjects.length || current.subjects?.length ? { subjects } : {}), ...this.limitsConfig() });
      }
      const after = await this.kv.get(name);
      if (after?.revision === before.revision) return;
    }
    throw new CanopyError(ErrorCode.Conflict, `shard ${name} kept changing while syncing its sources`);
  }

  private shardConfig(name: string, sources: StreamSource[]): Partial<StreamConfig> & { name: string } {
    return {
      name,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: this.opts.limits ? this.opts.limits.upMaxAgeMs * 1e6 : this.opts.retentionDays * 86_400e9,
      ...(this.opts.limits ? { max_bytes: this.opts.limits.upMaxBytes } : {}),
      num_replicas: this.opts.replicas,
      sources,
    };
  }

  /** The recorded limits as stream config (nothing before `hub start` recorded any). */
  private limitsConfig(): Pick<StreamConfig, "max_bytes" | "max_age"> | Record<string, never> {
    const l = this.opts.limits;
    return l ? { max_bytes: l.upMaxBytes, max_age: l.upMaxAgeMs * 1e6 } : {};
  }

  private hasLimits(c: StreamConfig): boolean {
    const l = this.opts.limits;
    return !l || (c.max_bytes === l.upMaxBytes && c.max_age === l.upMaxAgeMs * 1e6);
  }
}

/** A hub shard sources the device's leaf `UP` through the device's JetStream domain. */
export function deviceSource(device: string): StreamSource {
  // Delivered on the device's own prefix `du.<dev>`: its credentials may publish there and nowhere
  // under another device's (never the shared `$JS.S.>`).
  return { name: Assets.upStream, external: { api: Subjects.deviceJsApi(device), deliver: Subjects.sourceDeliver(device) } } as StreamSource;
}

/** The device a shard source points at, from its external API prefix `$JS.<dev>.API`. */
export function sourceDevice(src: object): string | undefined {
  // The server includes `external` in source info although the client's type omits it.
  const api = (src as { external?: { api?: string } }).external?.api ?? "";
  return /^\$JS\.([A-Za-z0-9_-]{1,64})\.API$/.exec(api)?.[1];
}

function sameSources(a: StreamSource[], b: StreamSource[]): boolean {
  const key = (s: StreamSource): string => s.external?.api ?? s.name;
  const sa = new Set(a.map(key));
  return sa.size === b.length && b.every((s) => sa.has(key(s)));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  return sa.size === b.length && b.every((x) => sa.has(x));
}

export function shardIndex(name: string): number {
  return Number(name.slice(Assets.fleetUpShardPrefix.length));
}
