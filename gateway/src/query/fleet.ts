import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { Assets, CanopyError, DeviceRecord, ErrorCode, errorMessage, DeviceStatus, isOnline, type DeviceRecord as DeviceRecordT, type DeviceStatus as DeviceStatusT } from "@canopy/protocol";

export interface KnownDevice {
  record: DeviceRecordT;
  status: DeviceStatusT | undefined;
  /** Hub receive time of the last status record (not the device clock). */
  seenAt: number | undefined;
  online: boolean;
}

export interface Target {
  group?: string | undefined;
  device?: string | undefined;
}

/**
 * The devices a query is addressed to, as the hub knows them: registry (KV `devices`) filtered by
 * group or device, joined with presence (KV `status`). Online ones are the expected answerers.
 */
export async function targetDevices(nc: NatsConnection, target: Target, now = Date.now()): Promise<KnownDevice[]> {
  const kvm = new Kvm(nc);
  // allSettled: if one read fails the other must still finish (and stop its watcher) before the
  // caller drains the connection.
  const [d, st] = await Promise.allSettled([
    kvm.open(Assets.kvDevices).then((kv) => readAll(kv, target.device)),
    kvm.open(Assets.kvStatus).then((kv) => readAll(kv, target.device)),
  ]);
  if (d.status === "rejected") throw hubError(d.reason);
  if (st.status === "rejected") throw hubError(st.reason);
  const devices = d.value;
  const statuses = st.value;
  const status = new Map<string, { s: DeviceStatusT; seenAt: number }>();
  for (const e of statuses) {
    const p = DeviceStatus.safeParse(safeJson(e));
    if (p.success) status.set(e.key, { s: p.data, seenAt: e.created.getTime() });
  }
  const out: KnownDevice[] = [];
  for (const e of devices) {
    const p = DeviceRecord.safeParse(safeJson(e));
    if (!p.success) continue;
    const record = p.data;
    if (target.group && !record.groups.includes(target.group)) continue;
    const st = status.get(record.id);
    out.push({
      record,
      status: st?.s,
      seenAt: st?.seenAt,
      online: st ? isOnline({ ...st.s, at: st.seenAt }, now) : false,
    });
  }
  return out.sort((a, b) => a.record.id.localeCompare(b.record.id));
}

/**
 * Last value of every key (or one key) in a bucket, in one pass of an ordered consumer rather than a
 * get per key: a query of 5,000 devices reads two buckets, not 10,000 round trips.
 */
export async function readAll(kv: KV, key?: string): Promise<KvEntry[]> {
  if (key !== undefined) {
    const e = await kv.get(key);
    return e && e.operation === "PUT" ? [e] : [];
  }
  const st = await kv.status();
  if (st.values === 0) return [];
  const out: KvEntry[] = [];
  // Deletes are delivered too (and skipped here) so the last initial entry is always seen; the
  // deadline only bounds a server that stops delivering.
  const iter = await kv.watch();
  const guard = setTimeout(() => iter.stop(), 10_000);
  try {
    for await (const e of iter) {
      if (e.operation === "PUT") out.push(e);
      if (e.delta === 0 || e.isUpdate) break;
    }
  } finally {
    clearTimeout(guard);
    iter.stop();
  }
  return out;
}

function safeJson(e: KvEntry): unknown {
  try {
    return e.json();
  } catch {
    return undefined;
  }
}

function hubError(err: unknown): CanopyError {
  return new CanopyError(ErrorCode.Unavailable, `cannot read the registry/presence buckets: ${errorMessage(err)} (is this a Canopy hub?)`, { cause: err });
}
