import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import { Backoff, sleep, upstreamMsgId } from "@canopy/protocol";
import { BatchSender } from "@canopy/protocol/nats/batch";
import type { AgentState, OutboxEntry } from "../state/store.js";
import type { Logger } from "../logging.js";

const SEQ_KEY = "up.seq";

/**
 * Upstream publisher for what the agent itself produces (events, results, reports). Each message gets
 * the next sequence, goes into the LMDB outbox (flushed) before it is sent, and leaves the outbox
 * when the local UP stream acked it. After a crash the outbox is replayed with the same
 * `Nats-Msg-Id` (`<dev>:agent:<seq>`), so the stream's duplicate window drops what was already stored.
 */
export class UpPublisher {
  private seq: number;
  private readonly js: JetStreamClient;
  private readonly batch: BatchSender;
  private replaying: Promise<void> | undefined;
  private readonly backoff = new Backoff({ initialMs: 250, maxMs: 10_000 });
  /** Told how long each publish took from outbox write to stream ack (the metrics histogram). */
  onPublished: ((seconds: number) => void) | undefined;

  constructor(
    private readonly device: string,
    nc: NatsConnection,
    private readonly state: AgentState,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {
    this.js = jetstream(nc);
    // Few messages (a command's running + result) go as plain pipelined publishes: lower latency.
    this.batch = new BatchSender({ nc, timeoutMs: 5_000, minBatch: 16 });
    const stored = Number(state.meta.get(SEQ_KEY) ?? 0);
    const lastOutbox = Number([...state.outbox.getKeys({ reverse: true, limit: 1 })][0] ?? 0);
    this.seq = Math.max(stored, lastOutbox);
  }

  /** Messages written but not yet acked by the local stream. */
  get pending(): number {
    return this.state.outbox.getCount();
  }

  /** Resends anything a previous run left in the outbox. */
  start(): void {
    if (this.pending > 0) this.scheduleReplay();
  }

  /**
   * Durably queues and sends one message. Resolves with the stream's ack; if the send fails the
   * message stays queued and is retried in the background, so callers may ignore the rejection.
   */
  async publish(subject: string, data: string | Uint8Array, headers?: Record<string, string>): Promise<PubAck> {
    const started = performance.now();
    const seq = ++this.seq;
    const entry: OutboxEntry = {
      subject,
      data: typeof data === "string" ? data : Buffer.from(data).toString("utf8"),
      ...(headers ? { headers } : {}),
    };
    void this.state.outbox.put(seq, entry);
    void this.state.meta.put(SEQ_KEY, seq);
    await this.state.durable();
    try {
      const ack = await this.send(seq, entry);
      this.onPublished?.((performance.now() - started) / 1000);
      return ack;
    } catch (err) {
      this.scheduleReplay();
      throw err;
    }
  }

  /**
   * Messages written in the same turn leave as one atomic batch (one ack); a message alone, or one
   * whose batch failed, goes by itself with the same msgID (the duplicate window drops a copy).
   */
  private async send(seq: number, entry: OutboxEntry): Promise<PubAck> {
    const msgID = upstreamMsgId(this.device, seq, "agent");
    const ack = (await this.batch.send(entry.subject, Buffer.from(entry.data, "utf8"), msgID, entry.headers)) ?? (await this.sendAlone(msgID, entry));
    void this.state.outbox.remove(seq);
    return ack;
  }

  private sendAlone(msgID: string, entry: OutboxEntry): Promise<PubAck> {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(entry.headers ?? {})) h.set(k, v);
    return this.js.publish(entry.subject, entry.data, { msgID, headers: h, timeout: 5_000 });
  }

  private scheduleReplay(): void {
    this.replaying ??= this.replay().finally(() => (this.replaying = undefined));
  }

  private async replay(): Promise<void> {
    while (!this.signal.aborted && this.pending > 0) {
      try {
        for (const { key, value } of this.state.outbox.getRange({})) {
          if (this.signal.aborted) return;
          await this.send(key, value);
        }
        this.backoff.reset();
      } catch (err) {
        const wait = this.backoff.next();
        this.log.warn({ err: (err as Error).message, pending: this.pending, retryInMs: wait }, "upstream outbox replay failed");
        if (!(await sleep(wait, this.signal))) return;
      }
    }
  }
}
