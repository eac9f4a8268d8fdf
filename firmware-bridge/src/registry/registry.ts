import type { Database } from "lmdb";
import type { McuSummary } from "@canopy/protocol";

export interface McuIdentity {
  id: string;
  board: string;
  firmware: string;
  /** `serial:<path>` or `mqtt:<peer address>`. */
  link: string;
}

/**
 * The MCU registry in LMDB. Identity changes and online/offline transitions are written (and flushed)
 * at once; `lastSeen` moves on every message but is only written by `flush()` (called on a timer and
 * at shutdown), so a busy MCU does not cost one LMDB write per reading.
 */
export class McuRegistry {
  private readonly dirty = new Set<string>();
  pruned = 0;

  /**
   * At most `max` MCUs are remembered: the registry is the MCU list every heartbeat carries, so a
   * flood of made-up ids must not grow it. `onPrune` drops what else the bridge keeps per MCU.
   */
  constructor(
    private readonly db: Database<McuSummary, string>,
    private readonly max = 128,
    private readonly onPrune: (id: string) => void = () => {},
  ) {}

  /** Admitted ids whose first record is not committed yet (they count against the cap). */
  private readonly joining = new Set<string>();
  /** Pruned ids whose removal is not committed yet. */
  private readonly leaving = new Set<string>();

  get size(): number {
    return this.db.getCount() + this.joining.size - this.leaving.size;
  }

  /** At startup nothing is connected yet: whatever the last run left "online" is offline now. */
  async markAllOffline(): Promise<void> {
    // Best effort: on a full data partition the commit fails ("Commit failed", ENOSPC), and a bridge
    // that refused to start over it could not answer its MQTT clients "quota exceeded" either.
    try {
      for (const { key, value } of this.db.getRange()) {
        if (value.online) await this.db.put(key, { ...value, online: false });
      }
      await this.db.flushed;
    } catch {
      /* the stale "online" flags are corrected as MCUs say hello again */
    }
    while (this.size > this.max && this.pruneOne()) {
      /* an earlier run without a cap (or with a larger one) left too many */
    }
  }

  /**
   * May `id` join? Known ids always may; a new one may while there is room, or by pruning the MCU
   * offline the longest. False when every remembered MCU is online (the caller refuses the link).
   */
  admit(id: string): boolean {
    if (this.db.get(id) !== undefined || this.joining.has(id)) return true;
    if (this.size >= this.max && !this.pruneOne()) return false;
    this.joining.add(id);
    return true;
  }

  /** An admitted id whose connection closed before it came online: it no longer holds a place. */
  abandon(id: string): void {
    this.joining.delete(id);
  }

  private pruneOne(): boolean {
    let oldest: McuSummary | undefined;
    for (const { key, value: stored } of this.db.getRange()) {
      const value = this.uncommitted.get(key) ?? stored;
      if (!value.online && !this.leaving.has(key) && (!oldest || value.lastSeen < oldest.lastSeen)) oldest = value;
    }
    if (!oldest) return false;
    const id = oldest.id;
    this.leaving.add(id);
    void this.db
      .remove(id)
      .catch(() => {})
      .finally(() => this.leaving.delete(id));
    this.pending.delete(id);
    this.dirty.delete(id);
    this.pruned++;
    this.onPrune(id);
    return true;
  }

  /**
   * The latest record of `id`, committed or not. Every read-modify-write starts here: two updates in
   * flight together (a flash record and the hello of the link that got the port back) must not read
   * the same committed record, or the later commit erases what the other one wrote.
   */
  private current(id: string): McuSummary | undefined {
    return this.uncommitted.get(id) ?? this.db.get(id);
  }

  async online(who: McuIdentity, now = Date.now()): Promise<McuSummary> {
    const prev = this.current(who.id);
    const rec: McuSummary = {
      id: who.id,
      board: who.board,
      firmware: who.firmware,
      link: who.link,
      online: true,
      firstSeen: prev?.firstSeen ?? now,
      lastSeen: now,
      ...(prev?.imageSha256 ? { imageSha256: prev.imageSha256 } : {}),
      ...(prev?.lastFlash ? { lastFlash: prev.lastFlash } : {}),
    };
    await this.write(rec);
    this.joining.delete(who.id);
    await this.db.flushed;
    this.dirty.delete(who.id);
    return rec;
  }

  /** Records written and not committed yet (LMDB reads do not see them): a quick disconnect must still find them. */
  private readonly uncommitted = new Map<string, McuSummary>();

  private async write(rec: McuSummary): Promise<void> {
    this.uncommitted.set(rec.id, rec);
    try {
      await this.db.put(rec.id, rec);
    } finally {
      if (this.uncommitted.get(rec.id) === rec) this.uncommitted.delete(rec.id);
    }
  }

  async offline(id: string, now = Date.now()): Promise<McuSummary | undefined> {
    const prev = this.current(id);
    if (!prev) return undefined;
    const rec = { ...prev, online: false, lastSeen: Math.max(prev.lastSeen, now) };
    await this.write(rec);
    this.dirty.delete(id);
    return rec;
  }

  /**
   * The end of a flash: how it ended, and the image hash when the new image runs. `runningVersion` is what the flasher saw the MCU boot (its hello or banner):
   * recorded at once, so a report never pairs this flash with the version from before it (the link's
   * own hello comes only once the bridge has the port back).
   */
  async flashed(id: string, rec: NonNullable<McuSummary["lastFlash"]>, runningSha256?: string, runningVersion?: string): Promise<void> {
    const prev = this.current(id);
    if (!prev) return;
    await this.write({ ...prev, lastFlash: rec, ...(runningSha256 ? { imageSha256: runningSha256 } : {}), ...(runningVersion ? { firmware: runningVersion } : {}) });
    await this.db.flushed;
  }

  /** Hot path (every reading): memory only, no LMDB read. */
  seen(id: string, now = Date.now()): void {
    const at = this.pending.get(id);
    if (at !== undefined && at >= now) return;
    this.pending.set(id, now);
    this.dirty.add(id);
  }

  private readonly pending = new Map<string, number>();

  async flush(): Promise<void> {
    for (const id of this.dirty) {
      const prev = this.current(id);
      const at = this.pending.get(id);
      if (prev && at !== undefined && at > prev.lastSeen) await this.write({ ...prev, lastSeen: at });
    }
    this.dirty.clear();
    this.pending.clear();
  }

  get(id: string): McuSummary | undefined {
    const rec = this.current(id);
    if (!rec) return undefined;
    const at = this.pending.get(id);
    return at !== undefined && at > rec.lastSeen ? { ...rec, lastSeen: at } : rec;
  }

  list(): McuSummary[] {
    const out: McuSummary[] = [];
    for (const { key } of this.db.getRange()) {
      const rec = this.get(key);
      if (rec) out.push(rec);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }
}
