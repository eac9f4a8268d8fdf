import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type OrderedConsumerOptions } from "@nats-io/jetstream";
import { Assets, CanopyError, ErrorCode, checkId, errorMessage, sleep } from "@canopy/protocol";
import { Shards } from "../registry/shards.js";
import { fromJsMsg, type UpRecord } from "./messages.js";
import { startSeqForLast } from "./window.js";

export interface TailOptions {
  device?: string;
  /** A subject filter within `up.>` (wildcards allowed); with `device`, may be relative (`tlm.>`). */
  subject?: string;
  sinceMs?: number;
  /** The last N matching messages (ignored when `sinceMs` is given). */
  last?: number;
  follow?: boolean;
  signal?: AbortSignal;
  /** Called once the window is printed and following begins. */
  onFollow?: () => void;
  /** Called when a follow loop lost its consumer and starts again from the next sequence. */
  onResume?: (shard: string, fromSeq: number, why: string) => void;
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

/**
 * The stream filter for `--device` and `--subject`. With a device, a wildcard in the device position
 * means that device (`up.*.tlm.temp` → `up.d1.tlm.temp`), and a subject without `up.` is taken
 * relative to the device (`tlm.>` → `up.d1.tlm.>`).
 */
export function tailFilter(o: Pick<TailOptions, "device" | "subject">): string {
  const device = o.device === undefined ? undefined : checkId(o.device, "device id");
  if (!o.subject) return device ? `up.${device}.>` : "up.>";
  let subject = o.subject;
  if (device && !subject.startsWith("up.") && subject !== "up") subject = `up.${device}.${subject}`;
  if (!/^up(\.[^.\s]+)+$/.test(subject)) {
    throw new CanopyError(ErrorCode.InvalidInput, `--subject must be within up.> (e.g. up.d1.tlm.>, or tlm.> with --device), got ${JSON.stringify(o.subject)}`);
  }
  if (!device) return subject;
  const [, who, ...rest] = subject.split(".");
  if (who === ">") return `up.${device}.>`;
  if (who === "*" || who === device) return ["up", device, ...rest].join(".");
  throw new CanopyError(ErrorCode.InvalidInput, `--subject ${o.subject} is not a subject of device ${device} (use up.${device}.… or up.*.…)`);
}

/**
 * Reads what reached the hub. Each device lives in exactly one shard and a shard keeps each device's
 * messages in the device's order. Without --follow the read stops at the end of every shard; with it,
 * each shard is followed by stream sequence, so a consumer lost to a hub restart is recreated at the
 * next sequence: nothing skipped, nothing repeated.
 */
export async function* tail(nc: NatsConnection, o: TailOptions): AsyncGenerator<UpRecord> {
  const filter = tailFilter(o);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const shards = await shardsFor(nc, o.device);
  const next = new Map<string, number>();
  const window: UpRecord[] = [];
  const merge = o.sinceMs === undefined && o.last !== undefined && shards.length > 1;
  for (const shard of shards) {
    const end = (await jsm.streams.info(shard)).state.last_seq;
    const start: Partial<OrderedConsumerOptions> =
      o.sinceMs !== undefined
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - o.sinceMs).toISOString() }
        : o.last !== undefined
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: await startSeqForLast(jsm, shard, filter, o.last) }
          : {};
    next.set(shard, end + 1);
    if (start.opt_start_seq !== undefined && start.opt_start_seq > end) continue;
    for await (const r of readTo(js, shard, filter, start, end, o.signal)) {
      if (merge) window.push(r);
      else yield r;
    }
  }
  if (merge) {
    window.sort((a, b) => a.time.localeCompare(b.time));
    yield* window.slice(-(o.last ?? 0));
  }
  if (o.follow) {
    o.onFollow?.();
    yield* follow(nc, js, filter, next, o);
  }
}

/** The shard's matching messages from `start` up to sequence `end` (inclusive). */
async function* readTo(js: JetStreamClient, shard: string, filter: string, start: Partial<OrderedConsumerOptions>, end: number, signal?: AbortSignal): AsyncGenerator<UpRecord> {
  const c = await js.consumers.get(shard, { filter_subjects: filter, ...start });
  for (;;) {
    const batch = await c.fetch({ max_messages: 1_000, expires: 2_000 });
    let got = 0;
    let pending = 0;
    let last = 0;
    for await (const m of batch) {
      if (m.seq > end) return;
      got++;
      pending = m.info.pending;
      last = m.seq;
      yield fromJsMsg(m, shard);
    }
    if (got === 0 || pending === 0 || last >= end || signal?.aborted) return;
  }
}

/** Every shard followed from its next sequence, interleaved as messages arrive. */
async function* follow(nc: NatsConnection, js: JetStreamClient, filter: string, next: Map<string, number>, o: TailOptions): AsyncGenerator<UpRecord> {
  const queue: UpRecord[] = [];
  // After a reconnect every consumer is recreated at once from its next sequence, rather than
  // waiting for the client library to notice missed heartbeats (tens of seconds).
  const kicks = new EventTarget();
  void (async () => {
    for await (const s of nc.status()) if (s.type === "reconnect") kicks.dispatchEvent(new Event("kick"));
  })().catch(() => undefined);
  let wake: (() => void) | undefined;
  const stop = new AbortController();
  const onAbort = (): void => {
    stop.abort();
    wake?.();
  };
  o.signal?.addEventListener("abort", onAbort);
  const loops = [...next].map(([shard, from]) =>
    followShard(js, shard, filter, from, (r) => {
      queue.push(r);
      wake?.();
    }, stop.signal, kicks, o.onResume),
  );
  try {
    while (!stop.signal.aborted) {
      const r = queue.shift();
      if (r) yield r;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    stop.abort();
    await Promise.allSettled(loops);
  }
}

async function followShard(
  js: JetStreamClient,
  shard: string,
  filter: string,
  from: number,
  push: (r: UpRecord) => void,
  signal: AbortSignal,
  kicks: EventTarget,
  onResume?: TailOptions["onResume"],
): Promise<void> {
  let next = from;
  let failures = 0;
  while (!signal.aborted) {
    let why = "consumer ended";
    try {
      const c = await js.consumers.get(shard, { filter_subjects: filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next });
      const it = await c.consume();
      const stopIt = (): void => void it.stop();
      signal.addEventListener("abort", stopIt, { once: true });
      kicks.addEventListener("kick", stopIt, { once: true });
      try {
        for await (const m of it) {
          failures = 0;
          if (m.seq < next) continue; // a consumer recreated by the client library replays from its own cursor
          next = m.seq + 1;
          push(fromJsMsg(m, shard));
        }
      } finally {
        signal.removeEventListener("abort", stopIt);
        kicks.removeEventListener("kick", stopIt);
      }
    } catch (err) {
      why = errorMessage(err);
    }
    if (signal.aborted) return;
    failures++;
    onResume?.(shard, next, why);
    await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)), signal).catch(() => undefined);
  }
}
