import type { JetStreamManager } from "@nats-io/jetstream";
import { Assets, type UpBacklog } from "@canopy/protocol";

/**
 * The UP stream as the device sees it: what is stored, and how far the hub's source consumer got.
 * Sources pull through an ephemeral consumer on this stream; its delivered stream sequence is the
 * leaf's view of what reached the hub. No such consumer means the hub is not sourcing right now.
 */
export async function readUpBacklog(
  jsm: JetStreamManager,
): Promise<Omit<UpBacklog, "discarded"> & { full: boolean; delivered: number | undefined }> {
  const info = await jsm.streams.info(Assets.upStream);
  const s = info.state;
  let delivered: number | undefined;
  for await (const c of jsm.consumers.list(Assets.upStream)) {
    if (c.config.durable_name) continue;
    delivered = Math.max(delivered ?? 0, c.delivered.stream_seq);
  }
  const maxBytes = info.config.max_bytes;
  return {
    messages: s.messages,
    bytes: s.bytes,
    firstSeq: s.first_seq,
    lastSeq: s.last_seq,
    ...(delivered === undefined ? {} : { pending: Math.max(0, s.last_seq - delivered) }),
    full: maxBytes > 0 && s.bytes >= maxBytes * 0.9,
    delivered,
  };
}
