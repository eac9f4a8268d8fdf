import type { KV } from "@nats-io/kv";

/**
 * A lease in KV for work only one gateway instance may do (rendering waves, repairing shards).
 * Taken with create(), renewed and stolen-after-expiry with compare-and-set on the revision.
 */
interface LeaseRecord {
  holder: string;
  expiresAt: number;
}

export class Lease {
  private revision = 0;

  constructor(
    private readonly kv: KV,
    readonly name: string,
    readonly holder: string,
    private readonly ttlMs = 15_000,
  ) {}

  /** True when this holder has the lease after the call (acquired, renewed, or taken over). */
  async tryAcquire(now = Date.now()): Promise<boolean> {
    const rec: LeaseRecord = { holder: this.holder, expiresAt: now + this.ttlMs };
    try {
      const e = await this.kv.get(this.name);
      if (!e || e.operation !== "PUT") {
        this.revision = e ? await this.kv.update(this.name, JSON.stringify(rec), e.revision) : await this.kv.create(this.name, JSON.stringify(rec));
        return true;
      }
      const cur = e.json<LeaseRecord>();
      if (cur.holder !== this.holder && cur.expiresAt > now) return false;
      this.revision = await this.kv.update(this.name, JSON.stringify(rec), e.revision);
      return true;
    } catch {
      return false; // lost a race: someone else holds it now
    }
  }

  async release(): Promise<void> {
    const e = await this.kv.get(this.name).catch(() => null);
    if (e && e.operation === "PUT" && e.json<LeaseRecord>().holder === this.holder) {
      await this.kv.delete(this.name, { previousSeq: e.revision }).catch(() => {});
    }
    this.revision = 0;
  }
}
