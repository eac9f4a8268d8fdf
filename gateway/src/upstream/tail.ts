import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager, type OrderedConsumerOptions } from "@nats-io/jetstream";
import { Assets, CanopyError, ErrorCode, checkId } from "@canopy/protocol";
import { Shards } from "../registry/shards.js";
import { fromJsMsg, type UpRecord } from "./messages.js";

export interface TailOptions {
  device?: string;
  /** A subject filter within `up.>` (wildcards allowed). */
  subject?: string;
  sinceMs?: number;
  follow?: boolean;
  signal?: AbortSignal;
}

/** The shards to read: the device's own shard when one device is asked for, else all of them. */
async function shardsFor(nc: NatsConnection, device: string | undefined): Promise<string[]> {
  const shards = await Shards.open(nc);
  if (device) {
    const s = await shards.shardOf(device);
    if (!s) throw new CanopyError(ErrorCode.NotFound, `device ${device} is not in any shard (is it enrolled?)`);
    return [s];
  }
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const n of jsm.streams.names()) if (n.startsWith(Assets.fleetUpShardPrefix)) names.push(n);
  return names.sort();
}

export function tailFilter(o: Pick<TailOptions, "device" | "subject">): string {
  if (o.subject) {
    if (!/^up(\.[^.\s]+)+$/.test(o.subject)) {
      throw new CanopyError(ErrorCode.InvalidInput, `--subject must be within up.> (e.g. up.d1.tlm.>), got ${JSON.stringify(o.subject)}`);
    }
    if (o.device && !o.subject.startsWith(`up.${o.device}.`)) {
      throw new CanopyError(ErrorCode.InvalidInput, `--subject ${o.subject} is not a subject of device ${o.device}`);
    }
    return o.subject;
  }
  return o.device ? `up.${checkId(o.device, "device id")}.>` : "up.>";
}

/**
 * Reads what reached the hub. Each device lives in exactly one shard and a shard keeps each device's
 * messages in the device's order, so records are yielded per shard in order; without --follow the
 * read stops at the end of every shard.
 */
export async function* tail(nc: NatsConnection, o: TailOptions): AsyncGenerator<UpRecord> {
  const filter = tailFilter(o);
  const js = jetstream(nc);
  const base: Partial<OrderedConsumerOptions> = { filter_subjects: filter };
  if (o.sinceMs !== undefined) {
    base.deliver_policy = DeliverPolicy.StartTime;
    base.opt_start_time = new Date(Date.now() - o.sinceMs).toISOString();
  }
  const shards = await shardsFor(nc, o.device);
  if (!o.follow) {
    for (const shard of shards) {
      const c = await js.consumers.get(shard, base);
      for (;;) {
        const batch = await c.fetch({ max_messages: 1_000, expires: 2_000 });
        let got = 0;
        let pending = 0;
        for await (const m of batch) {
          got++;
          pending = m.info.pending;
          yield fromJsMsg(m, shard);
        }
        if (got === 0 || pending === 0 || o.signal?.aborted) break;
      }
    }
    return;
  }
  // Follow: one ordered consumer per shard, interleaved as messages arrive.
  const queue: UpRecord[] = [];
  let wake: (() => void) | undefined;
  const iters = await Promise.all(
    shards.map(async (shard) => {
      const it = await (await js.consumers.get(shard, base)).consume();
      void (async () => {
        for await (const m of it) {
          queue.push(fromJsMsg(m, shard));
          wake?.();
        }
      })();
      return it;
    }),
  );
  const onAbort = (): void => wake?.();
  o.signal?.addEventListener("abort", onAbort);
  try {
    while (!o.signal?.aborted) {
      const r = queue.shift();
      if (r) yield r;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    for (const it of iters) it.stop();
  }
}
