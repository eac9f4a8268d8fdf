import type { IConnectPacket } from "mqtt-packet";
import type { Database } from "lmdb";

/** A persistent MQTT session kept across disconnects and bridge restarts: the client's subscriptions. */
export interface StoredSession {
  subs: Array<[string, 0 | 1]>;
  expiresAt: number;
}

/** 3.1.1 clean-session=0 has no expiry in the spec; the bridge keeps such a session this long. */
const V4_SESSION_MS = 7 * 86_400_000;
const MAX_EXPIRY_S = 7 * 86_400;

/**
 * What a CONNECT asks for: `persistMs` > 0 for 3.1.1 clean-session=0 or MQTT 5 session expiry > 0
 * (capped at 7 days); `discard` when the client starts clean (3.1.1 clean=1, MQTT 5 Clean Start).
 */
export function sessionRequest(pkt: IConnectPacket): { persistMs: number; discard: boolean } {
  if (pkt.protocolVersion === 5) {
    const expiry = Math.min(pkt.properties?.sessionExpiryInterval ?? 0, MAX_EXPIRY_S);
    return { persistMs: expiry * 1000, discard: pkt.clean !== false };
  }
  return { persistMs: pkt.clean === false ? V4_SESSION_MS : 0, discard: pkt.clean !== false };
}

/** The session to resume, if one is stored, unexpired and the client did not ask to start clean. */
export function resumeSession(db: Database<StoredSession, string>, clientId: string, req: { persistMs: number; discard: boolean }, now = Date.now()): StoredSession | undefined {
  const s = db.get(clientId);
  if (!s) return undefined;
  if (req.discard || s.expiresAt <= now || req.persistMs === 0) {
    void db.remove(clientId).catch(() => {});
    return undefined;
  }
  return s;
}

export function saveSession(db: Database<StoredSession, string>, clientId: string, subs: Array<[string, 0 | 1]>, persistMs: number, now = Date.now()): void {
  void db.put(clientId, { subs, expiresAt: now + persistMs }).catch(() => {});
}
