import { z } from "zod";
import { ConfigValue, Id, Timestamp, TokenPath } from "@canopy/protocol";

/**
 * A staged rollout, one record in hub KV `rollouts` (key = rollout id), changed only by
 * compare-and-set. Every step writes the record *before* acting on it (a wave is marked released,
 * then rendered; rendering is idempotent), so a gateway killed at any point resumes from the record
 * without skipping or repeating a wave.
 *
 *   running ──all waves passed──▶ finalizing ──layer written──▶ completed
 *      └──failures > max, timeout, abort──▶ halting ──previous value re-rendered──▶ halted
 *
 * Health gate of a wave: every device applied the revision (a refusal is a failure; an offline
 * device is pending unless --offline-fails), and then, for `soakMs`, every device that applied kept
 * reporting (presence heartbeats, judged on hub time): one that goes silent during the soak fails
 * the wave. Only a wave that passed and soaked lets the next one (or the finalizing) start.
 */
export const RolloutState = z.enum(["running", "finalizing", "completed", "halting", "halted"]);
export type RolloutState = z.infer<typeof RolloutState>;

export const DeviceResult = z.enum(["ok", "failed", "waiting", "offline"]);
export type DeviceResult = z.infer<typeof DeviceResult>;

export const Wave = z.object({
  /** Cumulative share of the group this wave brings the rollout to, e.g. 10, 50, 100. */
  percent: z.number().positive().max(100),
  devices: z.array(Id),
  releasedAt: Timestamp.optional(),
  /** Every device of the wave applied the revision (or is offline, pending). */
  passedAt: Timestamp.optional(),
  /** The applied devices kept reporting for the soak time after passedAt: the wave is healthy. */
  soakedAt: Timestamp.optional(),
  /** Last evaluated health of each device of the wave. */
  results: z
    .record(z.string(), z.object({ result: DeviceResult, error: z.string().optional(), silentSince: Timestamp.optional() }))
    .default({}),
});
export type Wave = z.infer<typeof Wave>;

export const Rollout = z.object({
  id: Id,
  key: TokenPath,
  value: ConfigValue,
  group: Id,
  /** The group layer's value when the rollout was created (absent = not set). */
  previous: z.object({ set: z.boolean(), value: ConfigValue.optional() }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  state: RolloutState,
  /** Index of the wave being released or checked; waves before it passed. */
  current: z.number().int().nonnegative(),
  waves: z.array(Wave).min(1),
  options: z.object({
    healthTimeoutMs: z.number().int().positive(),
    maxFailures: z.number().int().nonnegative(),
    offlineFails: z.boolean(),
    soakMs: z.number().int().nonnegative(),
  }),
  abortRequested: z.boolean().optional(),
  /** Why it halted, in words an operator can act on. */
  reason: z.string().optional(),
  failures: z.array(z.object({ device: Id, wave: z.number().int(), error: z.string() })).default([]),
  finishedAt: Timestamp.optional(),
});
export type Rollout = z.infer<typeof Rollout>;

export const ACTIVE_STATES: readonly RolloutState[] = ["running", "finalizing", "halting"];

/** Devices whose rendered config carries the rollout's value (released waves of a live rollout). */
export function releasedDevices(r: Rollout): string[] {
  return r.waves.filter((w) => w.releasedAt !== undefined).flatMap((w) => w.devices);
}

/** Cumulative wave sizes: `[10, 50, 100]` over 10 devices → 1, 4, 5 devices; empty waves dropped. */
export function planWaves(devices: readonly string[], percents: readonly number[]): Wave[] {
  const sorted = [...devices].sort();
  const waves: Wave[] = [];
  let taken = 0;
  for (const p of percents) {
    const upTo = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
    if (upTo <= taken) continue;
    waves.push({ percent: p, devices: sorted.slice(taken, upTo), results: {} });
    taken = upTo;
  }
  return waves;
}

/** Parses `10%,50%,100%` (the `%` is optional); must increase and end at 100. */
export function parseWaves(text: string): number[] {
  const parts = text.split(",").map((s) => s.trim());
  const out: number[] = [];
  for (const p of parts) {
    const m = /^(\d+(?:\.\d+)?)%?$/.exec(p);
    const n = m ? Number(m[1]) : NaN;
    if (!(n > 0 && n <= 100)) throw new Error(`invalid wave ${JSON.stringify(p)}: use percentages like 10%,50%,100%`);
    if (out.length > 0 && n <= (out[out.length - 1] ?? 0)) throw new Error(`waves must increase: ${text}`);
    out.push(n);
  }
  if (out[out.length - 1] !== 100) throw new Error(`the last wave must be 100%: ${text}`);
  return out;
}
