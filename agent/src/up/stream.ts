import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Assets, Subjects } from "@canopy/protocol";

export interface UpLimits {
  maxBytes: number;
  maxAgeMs: number;
  duplicateWindowMs: number;
}

export const DEFAULT_UP_LIMITS: UpLimits = {
  maxBytes: 256 * 2 ** 20,
  maxAgeMs: 7 * 86_400_000,
  duplicateWindowMs: 120_000,
};

/**
 * UP's max_bytes: what is configured, but at most half of what the leaf may store (the rest: the CMD
 * and config mirrors, and room to recover), so a small partition never gets an UP that outgrows it.
 */
export function upMaxBytesFor(configured: number, leafMaxFileStore: number): number {
  return Math.min(configured, Math.floor(leafMaxFileStore * 0.5));
}

/**
 * The device's store-and-forward stream: captures only its own `up.<dev>.>` (two leaves capturing the
 * same subjects would both store it), limits retention, discards the oldest when full. Created if
 * missing; limits updated in place when they changed.
 */
export async function ensureUpStream(jsm: JetStreamManager, device: string, limits: UpLimits): Promise<StreamConfig> {
  const want = {
    name: Assets.upStream,
    subjects: [Subjects.upAll(device)],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_bytes: limits.maxBytes,
    max_age: limits.maxAgeMs * 1e6,
    duplicate_window: limits.duplicateWindowMs * 1e6,
    // Atomic batch publish (nats-server ≥ 2.12): the bridge stores a burst of MCU readings with one
    // commit and one ack instead of one per message.
    allow_atomic: true,
  };
  let current: StreamConfig | undefined;
  try {
    current = (await jsm.streams.info(Assets.upStream)).config;
  } catch {
    current = undefined;
  }
  if (!current) return (await jsm.streams.add(want)).config;
  const same =
    current.max_bytes === want.max_bytes &&
    current.max_age === want.max_age &&
    current.duplicate_window === want.duplicate_window &&
    current.discard === want.discard &&
    current.allow_atomic === want.allow_atomic &&
    current.subjects?.length === 1 &&
    current.subjects[0] === want.subjects[0];
  if (same) return current;
  return (await jsm.streams.update(Assets.upStream, { ...current, ...want })).config;
}
