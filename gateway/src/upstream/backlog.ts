import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { Registry } from "../registry/devices.js";
import { sourceDevice } from "../registry/shards.js";
import { originSeq } from "./messages.js";

export interface BacklogRow {
  device: string;
  online: boolean;
  /** The device reported its data partition full (new data refused until there is room). */
  diskFull: boolean;
  shard: string | null;
  /** Messages in the device's UP not yet in the hub, as of `asOfMs` ago (null: never reported). */
  pending: number | null;
  /** Estimated from the device's average message size. */
  pendingBytes: number | null;
  /** Age of the device report that `pending` rests on. */
  asOfMs: number | null;
  /** Last sequence the device reported for its UP. */
  deviceSeq: number | null;
  /** Device-side sequence of the newest message the hub holds. */
  hubSeq: number | null;
  /** When the hub last received a message from the device. */
  lastReceived: string | null;
  lastReceivedAgeMs: number | null;
  /** Messages UP had to discard because it was full (never silent). */
  discarded: number;
  /** The hub's source state for the device (lag as the source last saw it, null when not sourcing). */
  source: { lag: number; activeAgoMs: number; error?: string } | null;
}

/**
 * Per device: how much of its UP has not reached the hub. The device reports its UP state in its
 * status heartbeat; the hub knows the newest origin sequence it stored (last message on `up.<dev>.>`
 * in the device's shard, `Nats-Stream-Source` header). Their difference is the backlog, as of the
 * device's last report: while the link is down the hub cannot know more, so the age is shown.
 */
export async function backlog(nc: NatsConnection, now = Date.now()): Promise<BacklogRow[]> {
  const jsm = await jetstreamManager(nc);
  const views = await (await Registry.open(nc)).view(now);
  const shardInfo = new Map<string, StreamInfo | null>();
  for (const shard of new Set(views.flatMap((v) => (v.record.shard ? [v.record.shard] : [])))) {
    shardInfo.set(shard, await jsm.streams.info(shard).catch(() => null));
  }
  return Promise.all(
    views.map(async (v): Promise<BacklogRow> => {
      const shard = v.record.shard ?? null;
      const last = shard ? await lastFrom(jsm, shard, v.record.id) : undefined;
      const up = v.status?.up;
      const hubSeq = last?.seq ?? null;
      let pending: number | null = null;
      let pendingBytes: number | null = null;
      if (up) {
        pending = Math.max(0, Math.min(up.messages, up.lastSeq - (hubSeq ?? 0)));
        pendingBytes = up.messages > 0 ? Math.round((up.bytes / up.messages) * pending) : 0;
      }
      const src = shard ? shardInfo.get(shard)?.sources?.find((s) => sourceDevice(s) === v.record.id) : undefined;
      return {
        device: v.record.id,
        online: v.online,
        diskFull: v.status?.storage?.full === true,
        shard,
        pending,
        pendingBytes,
        asOfMs: v.status ? now - v.status.seenAt : null,
        deviceSeq: up?.lastSeq ?? null,
        hubSeq,
        lastReceived: last ? last.time.toISOString() : null,
        lastReceivedAgeMs: last ? now - last.time.getTime() : null,
        discarded: up?.discarded ?? 0,
        source: src
          ? { lag: src.lag, activeAgoMs: Math.round(src.active / 1e6), ...(src.error ? { error: src.error.description } : {}) }
          : null,
      };
    }),
  );
}

async function lastFrom(jsm: JetStreamManager, shard: string, device: string): Promise<{ seq: number | null; time: Date } | undefined> {
  try {
    const m = await jsm.streams.getMessage(shard, { last_by_subj: `up.${device}.>` });
    if (!m) return undefined;
    return { seq: originSeq(m.header?.get("Nats-Stream-Source")), time: m.time };
  } catch {
    return undefined; // nothing received from this device yet
  }
}
