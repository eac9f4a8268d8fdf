import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { CanopyError, ErrorCode, checkId, checkTokenPath } from "@canopy/protocol";
import { Shards } from "../registry/shards.js";
import { tail } from "../upstream/tail.js";
import type { UpRecord } from "../upstream/messages.js";
import type { TelemetrySeries } from "./types.js";

/** At most this many messages are read for one plot or event list (bounded memory per request). */
export const MAX_POINTS = 100_000;

export type Series = TelemetrySeries;

/** The telemetry metrics a device has in its hub shard, with message counts (`tlm.<metric>` suffixes). */
export async function metricsOf(nc: NatsConnection, device: string): Promise<Array<{ metric: string; count: number }>> {
  checkId(device, "device id");
  const shard = await (await Shards.open(nc)).shardOf(device);
  if (!shard) throw new CanopyError(ErrorCode.NotFound, `device ${device} is not in any shard (is it enrolled?)`);
  const jsm = await jetstreamManager(nc);
  const prefix = `up.${device}.tlm.`;
  const info = await jsm.streams.info(shard, { subjects_filter: `${prefix}>` });
  return Object.entries(info.state.subjects ?? {})
    .map(([subject, count]) => ({ metric: subject.slice(prefix.length), count }))
    .sort((a, b) => a.metric.localeCompare(b.metric));
}

/** A reading's number: plain decimal text, a JSON number, or a JSON object's `value`. */
export function numericValue(payload: string): number | undefined {
  const text = payload.trim();
  if (text === "") return undefined;
  const n = Number(text);
  if (Number.isFinite(n)) return n;
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === "number" && Number.isFinite(v)) return v;
    if (v && typeof v === "object" && "value" in v) {
      const x = Number((v as { value: unknown }).value);
      return Number.isFinite(x) ? x : undefined;
    }
  } catch {
    /* not a number */
  }
  return undefined;
}

/** One metric's readings over the last `sinceMs`, read from the hub shard (hub receive time). */
export async function series(nc: NatsConnection, device: string, metric: string, sinceMs: number): Promise<Series> {
  checkId(device, "device id");
  checkTokenPath(metric, "metric");
  const t: number[] = [];
  const v: number[] = [];
  let truncated = false;
  for await (const r of tail(nc, { device, subject: `up.${device}.tlm.${metric}`, sinceMs })) {
    const x = numericValue(r.payload);
    if (x === undefined) continue;
    t.push(Date.parse(r.time) / 1000);
    v.push(x);
    if (t.length >= 2 * MAX_POINTS) {
      // Keep the newest; dropping half at once keeps this linear.
      t.splice(0, MAX_POINTS);
      v.splice(0, MAX_POINTS);
      truncated = true;
    }
  }
  if (t.length > MAX_POINTS) {
    t.splice(0, t.length - MAX_POINTS);
    v.splice(0, v.length - MAX_POINTS);
    truncated = true;
  }
  return { metric, t, v, truncated };
}

/** The newest `limit` events (`up.<dev>.evt.>`) of the last `sinceMs`, newest first. */
export async function recentEvents(nc: NatsConnection, device: string, sinceMs: number, limit: number): Promise<UpRecord[]> {
  checkId(device, "device id");
  const out: UpRecord[] = [];
  for await (const r of tail(nc, { device, subject: `up.${device}.evt.>`, sinceMs })) {
    out.push(r);
    if (out.length > limit) out.shift();
  }
  return out.reverse();
}
