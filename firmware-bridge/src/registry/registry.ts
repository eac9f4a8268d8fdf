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

  constructor(private readonly db: Database<McuSummary, string>) {}

  /** At startup nothing is connected yet: whatever the last run left "online" is offline now. */
  async markAllOffline(): Promise<void> {
    for (const { key, value } of this.db.getRange()) {
      if (value.online) await this.db.put(key, { ...value, online: false });
    }
    await this.db.flushed;
  }

  async online(who: McuIdentity, now = Date.now()): Promise<McuSummary> {
    const prev = this.db.get(who.id);
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
    await this.db.put(who.id, rec);
    await this.db.flushed;
    this.dirty.delete(who.id);
    return rec;
  }

  async offline(id: string, now = Date.now()): Promise<McuSummary | undefined> {
    const prev = this.db.get(id);
    if (!prev) return undefined;
    const rec = { ...prev, online: false, lastSeen: Math.max(prev.lastSeen, now) };
    await this.db.put(id, rec);
    this.dirty.delete(id);
    return rec;
  }

  /** A flash ended: remember how, and the image hash when the new image runs. */
  async flashed(id: string, rec: NonNullable<McuSummary["lastFlash"]>, runningSha256?: string): Promise<void> {
    const prev = this.db.get(id);
    if (!prev) return;
    await this.db.put(id, { ...prev, lastFlash: rec, ...(runningSha256 ? { imageSha256: runningSha256 } : {}) });
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
      const prev = this.db.get(id);
      const at = this.pending.get(id);
      if (prev && at !== undefined && at > prev.lastSeen) await this.db.put(id, { ...prev, lastSeen: at });
    }
    this.dirty.clear();
    this.pending.clear();
  }

  get(id: string): McuSummary | undefined {
    const rec = this.db.get(id);
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
