import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";

/**
 * The first shard sequence from which `filter` matches at most `n` messages: where `tail -n N` starts.
 * A consumer's `num_pending` counts the matching messages from its start sequence, so a binary search
 * over start sequences (≈ log2(stream length) short-lived consumers) finds it without reading data.
 */
export async function startSeqForLast(jsm: JetStreamManager, stream: string, filter: string, n: number): Promise<number> {
  const { state } = await jsm.streams.info(stream);
  let lo = Math.max(1, state.first_seq);
  let hi = state.last_seq + 1;
  if (n <= 0) return hi;
  if ((await pendingFrom(jsm, stream, filter, lo)) <= n) return lo;
  // Invariant: pendingFrom(lo) > n, pendingFrom(hi) <= n.
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await pendingFrom(jsm, stream, filter, mid)) > n) lo = mid;
    else hi = mid;
  }
  return hi;
}

async function pendingFrom(jsm: JetStreamManager, stream: string, filter: string, seq: number): Promise<number> {
  const ci = await jsm.consumers.add(stream, {
    filter_subject: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: seq,
    ack_policy: AckPolicy.None,
    mem_storage: true,
    inactive_threshold: 10_000_000_000,
  });
  await jsm.consumers.delete(stream, ci.name).catch(() => false);
  return ci.num_pending;
}
