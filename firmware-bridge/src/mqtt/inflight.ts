import type { ByteBudget } from "./budget.js";

/**
 * Received QoS 1 publishes waiting for the UP stream's ack. PUBACKs leave in the order the PUBLISH
 * packets arrived [MQTT-4.6.0-2], even when the stream acks out of order; the byte total drives
 * back-pressure (the socket pauses above the per-connection cap).
 */
interface Entry {
  messageId: number | undefined;
  bytes: number;
  reason: number;
  done: boolean;
}

export class InflightQueue {
  private readonly q: Entry[] = [];

  /** `budget` is the listener-wide total these bytes also count against. */
  constructor(private readonly budget?: ByteBudget) {}

  bytes = 0;
  /** QoS 1 entries only (receive maximum counts these). */
  qos1 = 0;

  add(messageId: number | undefined, bytes: number): Entry {
    const e: Entry = { messageId, bytes, reason: 0, done: false };
    this.q.push(e);
    this.bytes += bytes;
    this.budget?.take(bytes);
    if (messageId !== undefined) this.qos1++;
    return e;
  }

  /** Marks `e` settled and returns the PUBACKs that may leave now, in order. */
  settle(e: Entry, reason = 0): Array<{ messageId: number; reason: number }> {
    e.done = true;
    e.reason = reason;
    const out: Array<{ messageId: number; reason: number }> = [];
    while (this.q.length > 0 && (this.q[0] as Entry).done) {
      const head = this.q.shift() as Entry;
      this.bytes -= head.bytes;
      this.budget?.give(head.bytes);
      if (head.messageId !== undefined) {
        this.qos1--;
        out.push({ messageId: head.messageId, reason: head.reason });
      }
    }
    return out;
  }

  get length(): number {
    return this.q.length;
  }
}
