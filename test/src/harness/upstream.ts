import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "@canopy/protocol";

/**
 * Publishes `count` messages `<prefix><i>` on `subject` like a device app: JetStream publish on the
 * leaf with Nats-Msg-Id `<dev>:app:<subject>:<i>` and up to `window` acks outstanding. Returns the indices whose
 * publish was acked; failures (leaf down) are retried until `deadline`, then given up.
 */
export async function publishSeries(
  nc: NatsConnection,
  o: { device: string; subject: string; from?: number; count: number; window?: number; retryUntil?: number; onAck?: (i: number) => void },
): Promise<Set<number>> {
  const js = jetstream(nc);
  const acked = new Set<number>();
  const from = o.from ?? 0;
  const window = o.window ?? 500;
  let next = from;
  const end = from + o.count;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const i = next++;
      for (;;) {
        try {
          await js.publish(o.subject, String(i), { msgID: `${o.device}:app:${o.subject}:${i}`, timeout: 2_000 });
          acked.add(i);
          o.onAck?.(i);
          break;
        } catch {
          if (Date.now() > (o.retryUntil ?? 0)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, o.count) }, worker));
  return acked;
}

/**
 * The payloads of every message of `filter` in the hub shard, in shard order. A read that meets a
 * transient JetStream error (a clustered stream electing or catching up a leader answers "no responders"
 * for a moment) starts over, up to 30 s; the last error is thrown after that.
 */
export async function readShard(nc: NatsConnection, shard: string, filter: string): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await readShardOnce(nc, shard, filter);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function readShardOnce(nc: NatsConnection, shard: string, filter: string): Promise<string[]> {
  const js = jetstream(nc);
  const c = await js.consumers.get(shard, { filter_subjects: filter });
  const out: string[] = [];
  for (;;) {
    const batch = await c.fetch({ max_messages: 5_000, expires: 1_000 });
    let got = 0;
    let pending = 0;
    for await (const m of batch) {
      got++;
      pending = m.info.pending;
      out.push(m.string());
    }
    if (got === 0 || pending === 0) return out;
  }
}

/** How many messages on `filter` a stream holds (per-subject counts from stream info). */
export async function countIn(nc: NatsConnection, stream: string, filter: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream, { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

export async function waitForCount(nc: NatsConnection, stream: string, filter: string, n: number, timeoutMs: number): Promise<void> {
  let last: number | string = "none";
  await waitFor(
    async () => {
      last = await countIn(nc, stream, filter).catch((err: Error) => `error: ${err.message}`);
      return typeof last === "number" && last >= n;
    },
    { timeoutMs, intervalMs: 200, what: `${n} messages on ${filter} in ${stream}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last count: ${last})`);
  });
}

/** Asserts `payloads` are the integers from..to-1, each once, in order; returns a description of the first problem. */
export function checkSequence(payloads: string[], expected: number[]): string | undefined {
  if (payloads.length !== expected.length) return `expected ${expected.length} messages, got ${payloads.length}`;
  for (let k = 0; k < expected.length; k++) {
    if (payloads[k] !== String(expected[k])) return `at position ${k}: expected ${expected[k]}, got ${payloads[k]}`;
  }
  return undefined;
}
