import type { Database } from "lmdb";

const KEY = "seqCeiling";

/**
 * The bridge's message sequence (`Nats-Msg-Id` = `<dev>:<seq>`), persisted in blocks: before any number
 * of a block is handed out, the block's end is flushed to LMDB, and a restart resumes at the stored
 * ceiling. So a sequence is never reused after a crash (reuse inside the stream's duplicate window
 * would make JetStream silently drop a new message as a "duplicate"). Numbers come out in call order.
 */
export class SeqAllocator {
  private nextSeq: number;
  private ceiling: number;
  private refilling: Promise<void> | undefined;
  private readonly waiters: Array<(seq: number) => void> = [];

  private constructor(private readonly meta: Database<number, string>, start: number, private readonly block: number) {
    this.nextSeq = start;
    this.ceiling = start;
  }

  static async open(meta: Database<number, string>, block = 100_000): Promise<SeqAllocator> {
    const start = Math.max(1, meta.get(KEY) ?? 1);
    const a = new SeqAllocator(meta, start, block);
    await a.refill();
    return a;
  }

  /** Sequences already handed out or reserved; for logs and tests. */
  get peek(): number {
    return this.nextSeq;
  }

  /** The next sequence, synchronously when the current block has room (the normal case). */
  takeSync(): number | undefined {
    if (this.waiters.length > 0 || this.nextSeq >= this.ceiling) return undefined;
    const s = this.nextSeq++;
    if (this.ceiling - this.nextSeq < this.block / 2) void this.refill();
    return s;
  }

  take(): Promise<number> {
    const s = this.takeSync();
    if (s !== undefined) return Promise.resolve(s);
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      void this.refill();
    });
  }

  private refill(): Promise<void> {
    this.refilling ??= (async () => {
      const next = this.ceiling + this.block;
      await this.meta.put(KEY, next);
      await this.meta.flushed;
      this.ceiling = next;
      this.refilling = undefined;
      while (this.waiters.length > 0 && this.nextSeq < this.ceiling) this.waiters.shift()?.(this.nextSeq++);
      if (this.waiters.length > 0) void this.refill();
    })();
    return this.refilling;
  }
}
