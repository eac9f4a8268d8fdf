import { z } from "zod";
import { Timestamp } from "@canopy/protocol";

/**
 * What every staged rollout shares, whatever it changes (a config key for a group, a firmware version
 * for MCUs): waves of units released one after another, each held by a health gate, a halt that rolls
 * back, a record in hub KV changed only by compare-and-set. A unit is a device id (config rollouts) or
 * `<device>/<mcu>` (firmware rollouts); the field keeps the name `devices` the JSON has always had.
 *
 *   running ──all waves passed──▶ finalizing ──target finalized──▶ completed
 *      └──failures > max, timeout, abort──▶ halting ──target rolled back──▶ halted
 */
export const RolloutState = z.enum(["running", "finalizing", "completed", "halting", "halted"]);
export type RolloutState = z.infer<typeof RolloutState>;

export const DeviceResult = z.enum(["ok", "failed", "waiting", "offline"]);
export type DeviceResult = z.infer<typeof DeviceResult>;

export const ACTIVE_STATES: readonly RolloutState[] = ["running", "finalizing", "halting"];

export function waveSchema<U extends z.ZodType<string>>(unit: U) {
  return z.object({
    /** Cumulative share of the units this wave brings the rollout to, e.g. 10, 50, 100. */
    percent: z.number().positive().max(100),
    devices: z.array(unit),
    releasedAt: Timestamp.optional(),
    /** Every unit of the wave passed its gate (or is offline, pending). */
    passedAt: Timestamp.optional(),
    /** The units kept reporting for the soak time after passedAt (config): the wave is healthy. */
    soakedAt: Timestamp.optional(),
    /** Last evaluated health of each unit of the wave. */
    results: z
      .record(z.string(), z.object({ result: DeviceResult, error: z.string().optional(), silentSince: Timestamp.optional() }))
      .default({}),
  });
}

export const RolloutOptions = z.object({
  healthTimeoutMs: z.number().int().positive(),
  maxFailures: z.number().int().nonnegative(),
  offlineFails: z.boolean(),
  soakMs: z.number().int().nonnegative(),
});

/** The engine's fields; each kind of rollout extends them with what it changes. */
export function rolloutCoreShape<U extends z.ZodType<string>>(unit: U) {
  return {
    createdAt: Timestamp,
    updatedAt: Timestamp,
    state: RolloutState,
    /** Index of the wave being released or checked; waves before it passed. */
    current: z.number().int().nonnegative(),
    waves: z.array(waveSchema(unit)).min(1),
    options: RolloutOptions,
    abortRequested: z.boolean().optional(),
    /** Why it halted, in words an operator can act on. */
    reason: z.string().optional(),
    failures: z.array(z.object({ device: unit, wave: z.number().int(), error: z.string() })).default([]),
    finishedAt: Timestamp.optional(),
  };
}

export interface WaveT {
  percent: number;
  devices: string[];
  releasedAt?: number | undefined;
  passedAt?: number | undefined;
  soakedAt?: number | undefined;
  results: Record<string, { result: DeviceResult; error?: string | undefined; silentSince?: number | undefined }>;
}

/** The part of a rollout record the engine reads and writes. */
export interface RolloutCore {
  id: string;
  createdAt: number;
  updatedAt: number;
  state: RolloutState;
  current: number;
  waves: WaveT[];
  options: z.infer<typeof RolloutOptions>;
  abortRequested?: boolean | undefined;
  reason?: string | undefined;
  failures: Array<{ device: string; wave: number; error: string }>;
  finishedAt?: number | undefined;
}

/** Units of the released waves (config: whose rendered config carries the rollout's value). */
export function releasedUnits(r: Pick<RolloutCore, "waves">): string[] {
  return r.waves.filter((w) => w.releasedAt !== undefined).flatMap((w) => w.devices);
}

/** Cumulative wave sizes: `[10, 50, 100]` over 10 units → 1, 4, 5 units; empty waves dropped. */
export function planWaves(units: readonly string[], percents: readonly number[]): WaveT[] {
  const sorted = [...units].sort();
  const waves: WaveT[] = [];
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
