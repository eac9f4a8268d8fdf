import type { KV, KvEntry } from "@nats-io/kv";
import { DeviceBeat, type UpBacklog } from "@canopy/protocol";
import { readBucket } from "../kv/read.js";

/**
 * Compact heartbeats (KV `beat`): devices write their full status record (KV `status`) only when it
 * changes, and this small one in between. "Last seen" is the newer of the two entries' hub receive
 * times; the UP backlog counters come from whichever is newer. A hub provisioned before the bucket
 * existed has none: every read here then answers "no beat" and presence rests on `status` alone.
 */
export interface BeatOverlay {
  seenAt: number;
  up?: UpBacklog;
}

/** Every device's last beat, by device id (empty when the bucket is missing). */
export async function readBeats(kv: KV): Promise<Map<string, KvEntry>> {
  const entries = await readBucket(kv).catch(() => []);
  return new Map(entries.map((e) => [e.key, e]));
}

/** One device's last beat, or undefined. */
export async function readBeat(kv: KV, id: string): Promise<KvEntry | undefined> {
  const e = await kv.get(id).catch(() => null);
  return e && e.operation === "PUT" ? e : undefined;
}

/** The beat's time and backlog when it is newer than the status record stored at `statusSeenAt`. */
export function newerBeat(statusSeenAt: number, beat: KvEntry | undefined): BeatOverlay | undefined {
  if (!beat) return undefined;
  const seenAt = beat.created.getTime();
  if (seenAt <= statusSeenAt) return undefined;
  let parsed: unknown;
  try {
    parsed = beat.json();
  } catch {
    return { seenAt };
  }
  const b = DeviceBeat.safeParse(parsed);
  return b.success && b.data.up ? { seenAt, up: b.data.up } : { seenAt };
}

/** `seenAt` of the newer entry, the cheap form for the in-memory presence view. */
export function lastSeen(status: KvEntry | undefined, beat: KvEntry | undefined): number | undefined {
  const s = status?.created.getTime();
  const b = beat?.created.getTime();
  if (s === undefined) return undefined;
  return b !== undefined && b > s ? b : s;
}
