import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import { Backoff, CanopyError, ErrorCode, errorMessage, sleep, upstreamMsgId } from "@canopy/protocol";
import type { Database } from "lmdb";
import type { Logger } from "../log.js";
import type { DedupEntry } from "../registry/store.js";
import { BatchSender } from "@canopy/protocol/nats/batch";
import type { SeqAllocator } from "./seq.js";

/** Identifies one MCU message so a retransmission of it reuses the first attempt's sequence. */
export interface DedupKey {
  /** `s:<mcu>/<frameSeq>` or `m:<clientId>/<packetId>`. */
  key: string;
  /** Serial boot nonce (0 for MQTT). */
  boot: number;
  /** True when the sender marked it as a resend (binary RETX flag, MQTT DUP). */
  retransmit: boolean;
  /**
   * MQTT: first use of this packet id on the connection, so it may be a resend without DUP (the
   * `mqtt` npm client resends with DUP=0 after reconnecting). It counts as one only when its earlier
   * copy was stored but never PUBACKed (entry without `a`) and carries the same bytes.
   */
  maybeResend?: boolean;
}

export interface UpPublisherOptions {
  nc: NatsConnection;
  device: string;
  seqs: SeqAllocator;
  dedup: Database<DedupEntry, string>;
  log: Logger;
  signal: AbortSignal;
  /** Per-attempt JetStream ack timeout. */
  timeoutMs?: number;
  /** Largest atomic batch (1 = one publish and one ack per message, as before batching). */
  maxBatch?: number;
  /** Asked after a failed attempt: an error here (disk full) is thrown to the caller instead of retrying. */
  refusal?: () => CanopyError | undefined;
}

const enc = new TextEncoder();

/** FNV-1a over subject and payload. */
export function fingerprint(subject: string, data: Uint8Array): number {
  let h = 0x811c9dc5;
  const s = enc.encode(subject);
  for (const b of s) h = Math.imul(h ^ b, 0x01000193);
  for (const b of data) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/**
 * Publishes into the leaf's `UP` stream with `Nats-Msg-Id = <dev>:<seq>` and resolves only on the
 * stream's ack: callers (MQTT PUBACK, serial link ack) acknowledge to the MCU after that. Attempts
 * that time out (leaf restarting, stream missing) are retried with the same msgID and backoff, so
 * the duplicate window (120 s on UP) drops any copy that did land. A resend from the MCU (DUP / RETX)
 * finds its first attempt's sequence in LMDB, so it is deduplicated too, even across a bridge crash.
 */
export class UpPublisher {
  private readonly js: JetStreamClient;
  private readonly batch: BatchSender;
  private warnedAt = 0;
  published = 0;
  duplicates = 0;

  constructor(private readonly o: UpPublisherOptions) {
    this.js = jetstream(o.nc);
    // Ordered: after a failed batch (leaf restart) its messages are resent one by one before any later
    // batch leaves, so an MCU's readings stay in order in UP (per-message retry loops running side by
    // side, with later batches still pipelining, used to let a later reading land first).
    this.batch = new BatchSender({
      nc: o.nc,
      maxBatch: o.maxBatch ?? 250,
      timeoutMs: o.timeoutMs ?? 5_000,
      resend: (subject, data, msgID) => this.attemptLoop(subject, data, msgID),
    });
  }

  /** Atomic batches stored so far (for stats and tests). */
  get batches(): number {
    return this.batch.batches;
  }

  publish(subject: string, data: Uint8Array, dedup?: DedupKey): Promise<PubAck> {
    // A full disk refuses before the dedup entry is written: an LMDB commit that meets ENOSPC is fatal.
    const refused = this.o.refusal?.();
    if (refused) return Promise.reject(refused);
    // Everything up to the first request is synchronous, so publishes reach the stream in call order.
    let seq: number | undefined;
    const hash = dedup ? fingerprint(subject, data) : 0;
    if (dedup && (dedup.retransmit || dedup.maybeResend)) {
      const prev = this.unwritten.get(dedup.key) ?? this.o.dedup.get(dedup.key);
      if (prev && prev.h === hash && prev.b === dedup.boot && (dedup.retransmit || !prev.a)) seq = prev.s;
    }
    let written: Promise<unknown> | undefined;
    if (seq === undefined) {
      seq = this.o.seqs.takeSync();
      if (seq === undefined) return this.slowPublish(subject, data, dedup, hash);
      if (dedup) written = this.remember(dedup, seq, hash);
    }
    return this.send(subject, data, seq, written);
  }

  private async slowPublish(subject: string, data: Uint8Array, dedup: DedupKey | undefined, hash: number): Promise<PubAck> {
    const seq = await this.o.seqs.take();
    const written = dedup ? this.remember(dedup, seq, hash) : undefined;
    return this.send(subject, data, seq, written);
  }

  /**
   * Records which sequence an MCU message got, and resolves once that is on disk (`flushed`, not the
   * commit: the environment uses overlapping sync). LMDB gathers the writes issued meanwhile into one
   * transaction and one fsync, so under load this is one sync per burst, not per message.
   */
  private remember(dedup: DedupKey, seq: number, hash: number): Promise<unknown> {
    const entry: DedupEntry = { s: seq, h: hash, b: dedup.boot };
    // A resend can arrive before this commits (an MQTT client reconnecting at once): it must find it here.
    this.unwritten.set(dedup.key, entry);
    const forget = (): void => {
      if (this.unwritten.get(dedup.key) === entry) this.unwritten.delete(dedup.key);
    };
    return this.o.dedup.put(dedup.key, entry).then(() => this.o.dedup.flushed).finally(forget);
  }

  /** Dedup entries put but not yet committed (bounded by the messages in flight). */
  private readonly unwritten = new Map<string, DedupEntry>();

  private send(subject: string, data: Uint8Array, seq: number, written?: Promise<unknown>): Promise<PubAck> {
    if (!written && this.queued === 0) return this.attempt(subject, data, seq);
    // The dedup entry must be committed before the message can exist in the stream (a crash between
    // the two would let the MCU's resend land under a new sequence). LMDB commits are awaited in a
    // FIFO so first attempts still leave in call order, which keeps each MCU's readings in order.
    this.queued++;
    const ready = this.tail.then(() => written);
    this.tail = ready.catch(() => {}).finally(() => this.queued--);
    return ready.then(() => this.attempt(subject, data, seq));
  }

  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];

  /** Resolves once no publish is in flight (used at shutdown, bounded by the caller). */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async attempt(subject: string, data: Uint8Array, seq: number): Promise<PubAck> {
    this.inflight++;
    try {
      const msgID = upstreamMsgId(this.o.device, seq);
      const ack = (await this.batch.send(subject, data, msgID)) ?? (await this.attemptLoop(subject, data, msgID));
      if (ack.duplicate) this.duplicates++;
      else this.published++;
      return ack;
    } finally {
      if (--this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async attemptLoop(subject: string, data: Uint8Array, msgID: string): Promise<PubAck> {
    const backoff = new Backoff({ initialMs: 100, maxMs: 3_000 });
    for (;;) {
      try {
        return await this.js.publish(subject, data, { msgID, timeout: this.o.timeoutMs ?? 5_000 });
      } catch (err) {
        if (this.o.signal.aborted) {
          throw new CanopyError(ErrorCode.Cancelled, "bridge stopping", { cause: err });
        }
        const refused = this.o.refusal?.();
        if (refused) throw refused;
        if (Date.now() - this.warnedAt > 5_000) {
          this.warnedAt = Date.now();
          this.o.log.warn({ subject, err: errorMessage(err) }, "publish to UP not acked; retrying with the same msgID");
        }
        if (!(await sleep(backoff.next(), this.o.signal))) {
          throw new CanopyError(ErrorCode.Cancelled, "bridge stopping", { cause: err });
        }
      }
    }
  }
}
