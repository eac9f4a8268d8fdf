import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { readBucket } from "../kv/read.js";
import { Assets, CanopyError, ErrorCode, Facts, errorMessage, isOnline, isValidId, type Facts as FactsT } from "@canopy/protocol";

export interface KnownDevice {
  id: string;
  groups: string[];
  /** Hub receive time of the last status record (not the device clock). */
  seenAt: number | undefined;
  online: boolean;
  /** The facts of the last status record, validated on demand (only silent devices need them). */
  lastFacts(): FactsT | undefined;
}

export interface Target {
  group?: string | undefined;
  device?: string | undefined;
}

/**
 * The devices a query is addressed to, as the hub knows them: registry (KV `devices`) filtered by
 * group or device, joined with presence (KV `status`). Online ones are the expected answerers.
 * Records are checked field by field rather than with the full schemas: at 5,000 devices a schema
 * parse of every status record costs more than the fan-out itself.
 */
export async function targetDevices(nc: NatsConnection, target: Target, now = Date.now()): Promise<KnownDevice[]> {
  const kvm = new Kvm(nc);
  // allSettled: if one read fails the other must still finish (and stop its watcher) before the
  // caller drains the connection.
  const [d, st] = await Promise.allSettled([
    kvm.open(Assets.kvDevices).then((kv) => readBucket(kv, target.device)),
    kvm.open(Assets.kvStatus).then((kv) => readBucket(kv, target.device)),
  ]);
  if (d.status === "rejected") throw hubError(d.reason);
  if (st.status === "rejected") throw hubError(st.reason);
  const status = new Map<string, { v: Record<string, unknown>; seenAt: number }>();
  for (const e of st.value) {
    const v = safeJson(e);
    if (v) status.set(e.key, { v, seenAt: e.created.getTime() });
  }
  const out: KnownDevice[] = [];
  for (const e of d.value) {
    const r = safeJson(e);
    if (!r || !isValidId(r.id) || r.id !== e.key) continue;
    const groups = Array.isArray(r.groups) ? r.groups.filter(isValidId) : [];
    if (target.group && !groups.includes(target.group)) continue;
    const st = status.get(r.id);
    const at = st?.v.at;
    const heartbeatMs = st?.v.heartbeatMs;
    const online =
      st !== undefined && typeof at === "number" && typeof heartbeatMs === "number" && heartbeatMs > 0 &&
      isOnline({ at: st.seenAt, heartbeatMs, state: st.v.state === "stopping" ? "stopping" : "online" }, now);
    out.push({
      id: r.id,
      groups,
      seenAt: st?.seenAt,
      online,
      lastFacts: () => {
        const f = Facts.safeParse(st?.v.facts);
        return f.success ? f.data : undefined;
      },
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

function safeJson(e: KvEntry): Record<string, unknown> | undefined {
  try {
    const v = e.json<unknown>();
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function hubError(err: unknown): CanopyError {
  return new CanopyError(ErrorCode.Unavailable, `cannot read the registry/presence buckets: ${errorMessage(err)} (is this a Canopy hub?)`, { cause: err });
}
