import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";
import type { McuSummary } from "@canopy/protocol";
import type { StoredSession } from "../mqtt/sessions.js";

/** A dedup entry: which bridge sequence an MCU frame / MQTT packet id was published under. */
export interface DedupEntry {
  /** Bridge sequence (the `Nats-Msg-Id` is `<dev>:<s>`). */
  s: number;
  /** FNV-1a of subject and payload: a retransmission must carry the same bytes. */
  h: number;
  /** Serial: the MCU's boot nonce; MQTT: 0. */
  b: number;
  /** MQTT: set once the PUBACK was written; a later PUBLISH without DUP is then a new message. */
  a?: 1;
}

/**
 * Records that the PUBACK of `key` left. Not awaited by the caller: if the bridge dies before this
 * commits, a DUP-less resend of the same bytes is still taken for a retransmission, which is what
 * the client does when that PUBACK never reached it (the usual case after a crash).
 */
export function markAcked(db: Database<DedupEntry, string>, key: string): void {
  // One PUBLISH may have been stored as several messages (`<key>`, `<key>#1`, …; see mqtt/apply.ts).
  for (let i = 0; i < 256; i++) {
    const k = i === 0 ? key : `${key}#${i}`;
    const prev = db.get(k);
    if (!prev) return;
    if (!prev.a) void db.put(k, { ...prev, a: 1 }).catch(() => {});
  }
}

/**
 * The bridge's LMDB environment. Three databases:
 * - `mcus`: MCU registry, id → McuSummary;
 * - `meta`: `seqCeiling` (every bridge sequence below it may have been used: never reuse them);
 * - `dedup`: `s:<mcu>/<frameSeq>` and `m:<clientId>/<packetId>` → DedupEntry, bounded by the 16-bit
 *   key spaces (at most 65,536 entries per MCU) and dropped with the MCU when the registry prunes it;
 * - `creds`: MQTT client id → scrypt hash of its password (`canopy mcu creds`), never the password;
 * - `sessions`: persistent MQTT sessions (clean-session=0, MQTT 5 session expiry): subscriptions.
 */
export interface BridgeStore {
  readonly root: RootDatabase;
  readonly mcus: Database<McuSummary, string>;
  readonly meta: Database<number, string>;
  readonly dedup: Database<DedupEntry, string>;
  readonly creds: Database<string, string>;
  readonly sessions: Database<StoredSession, string>;
  close(): Promise<void>;
}

export function openBridgeStore(dir: string): BridgeStore {
  mkdirSync(dir, { recursive: true });
  const root = open({ path: join(dir, "bridge.lmdb"), compression: false });
  return {
    root,
    mcus: root.openDB<McuSummary, string>({ name: "mcus" }),
    meta: root.openDB<number, string>({ name: "meta" }),
    dedup: root.openDB<DedupEntry, string>({ name: "dedup" }),
    creds: root.openDB<string, string>({ name: "creds" }),
    sessions: root.openDB<StoredSession, string>({ name: "sessions" }),
    async close() {
      await root.flushed;
      await root.close();
    },
  };
}

/** Drops every dedup entry of one MCU (it was pruned from the registry). */
export function forgetDedup(db: Database<DedupEntry, string>, mcu: string): void {
  for (const prefix of [`m:${mcu}/`, `s:${mcu}/`]) {
    for (const key of db.getKeys({ start: prefix, end: `${prefix}\uffff` })) void db.remove(key).catch(() => {});
  }
}
