import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import {
  Assets,
  CanopyError,
  DeviceRecord,
  DeviceStatus,
  ErrorCode,
  Subjects,
  checkId,
  isOnline,
  type DeviceRecord as DeviceRecordT,
  type DeviceStatus as DeviceStatusT,
} from "@canopy/protocol";
import { Shards } from "./shards.js";
import { readBucket } from "../kv/read.js";
import { newerBeat, readBeat, readBeats } from "./beats.js";

export interface EnrollResult {
  record: DeviceRecordT;
  created: boolean;
}

/** The device registry (KV `devices`) and the shard membership that follows it. */
export class Registry {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly devices: KV,
    private readonly statusKv: KV,
    private readonly beatKv: KV,
    private readonly shards: Shards,
  ) {}

  static async open(nc: NatsConnection, opts: { shardSize?: number } = {}): Promise<Registry> {
    const kvm = new Kvm(nc);
    return new Registry(
      nc,
      await kvm.open(Assets.kvDevices),
      await kvm.open(Assets.kvStatus),
      await kvm.open(Assets.kvBeat),
      await Shards.open(nc, opts.shardSize === undefined ? {} : { shardSize: opts.shardSize }),
    );
  }

  /** Enrolls (or re-enrolls, updating groups) and makes sure a hub shard sources the device. */
  async enroll(id: string, groups: string[]): Promise<EnrollResult> {
    checkId(id, "device id");
    for (const g of groups) checkId(g, "group id");
    const existing = await this.get(id);
    const shard = await this.shards.assign(id);
    const record: DeviceRecordT = {
      id,
      groups: [...new Set(groups)],
      created: existing?.created ?? Date.now(),
      shard,
      ...(existing?.labels ? { labels: existing.labels } : {}),
    };
    if (existing) {
      if (groups.length === 0) record.groups = existing.groups;
      await this.devices.put(id, JSON.stringify(record));
      await this.notify(id);
      return { record, created: false };
    }
    try {
      await this.devices.create(id, JSON.stringify(record));
      return { record, created: true };
    } catch {
      // Raced with another add of the same id: the other writer's record stands; keep our groups.
      await this.devices.put(id, JSON.stringify(record));
      await this.notify(id);
      return { record, created: false };
    }
  }

  async remove(id: string): Promise<void> {
    checkId(id, "device id");
    if (!(await this.get(id))) throw new CanopyError(ErrorCode.NotFound, `device ${id} is not enrolled`);
    await this.shards.unassign(id);
    await this.devices.delete(id);
    await this.notify(id);
  }

  /** Tells a connected agent its record changed (it re-reads it); an offline one reads it on start. */
  private async notify(id: string): Promise<void> {
    this.nc.publish(Subjects.registryNotice(id));
    await this.nc.flush().catch(() => {});
  }

  async get(id: string): Promise<DeviceRecordT | undefined> {
    const e = await this.devices.get(checkId(id, "device id"));
    if (!e || e.operation !== "PUT") return undefined;
    return DeviceRecord.parse(e.json());
  }

  /** Every enrolled device, read in one pass (not a get per key). */
  async list(): Promise<DeviceRecordT[]> {
    const out: DeviceRecordT[] = [];
    for (const e of await readBucket(this.devices)) {
      const r = DeviceRecord.safeParse(safeJson(e));
      if (r.success) out.push(r.data);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Last-known status, with the hub's receive time (not the device clock) of the newer of the status
   * record and the compact beat as "last seen".
   */
  async status(id: string): Promise<DeviceView["status"] | undefined> {
    const [e, beat] = await Promise.all([this.statusKv.get(checkId(id, "device id")), readBeat(this.beatKv, id)]);
    return e && e.operation === "PUT" ? parseStatus(e, beat) : undefined;
  }

  /**
   * Registry joined with presence: three whole-bucket reads however large the fleet. Beat keys are
   * rewritten on every heartbeat, which is why this uses `readBucket` and not keys() + gets.
   */
  async view(now = Date.now()): Promise<DeviceView[]> {
    const [records, statuses, beats] = await Promise.all([this.list(), readBucket(this.statusKv), readBeats(this.beatKv)]);
    const byId = new Map(statuses.map((e) => [e.key, e]));
    return records.map((record) => {
      const e = byId.get(record.id);
      const status = e ? parseStatus(e, beats.get(record.id)) : undefined;
      const online = status ? isOnline({ ...status, at: status.seenAt }, now) : false;
      return { record, status, online, lastSeenMs: status ? now - status.seenAt : undefined };
    });
  }
}

function safeJson(e: KvEntry): unknown {
  try {
    return e.json();
  } catch {
    return undefined;
  }
}

function parseStatus(e: KvEntry, beat: KvEntry | undefined): DeviceView["status"] | undefined {
  const parsed = DeviceStatus.safeParse(safeJson(e));
  if (!parsed.success) return undefined;
  const seenAt = e.created.getTime();
  return { ...parsed.data, seenAt, reportedAt: seenAt, ...newerBeat(seenAt, beat) };
}

export interface DeviceView {
  record: DeviceRecordT;
  /** `seenAt`: hub time of the newer of the status record and the compact beat; `reportedAt`: of the status record itself. */
  status: (DeviceStatusT & { seenAt: number; reportedAt: number }) | undefined;
  online: boolean;
  lastSeenMs: number | undefined;
}
