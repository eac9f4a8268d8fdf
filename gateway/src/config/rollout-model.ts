import { z } from "zod";
import { ConfigValue, Id, TokenPath } from "@canopy/protocol";
import { releasedUnits, rolloutCoreShape, waveSchema, type RolloutCore } from "../rollout/model.js";

export { ACTIVE_STATES, DeviceResult, RolloutState, parseWaves, planWaves } from "../rollout/model.js";

/**
 * A staged config rollout, one record in hub KV `rollouts` (key = rollout id), changed only by
 * compare-and-set; the wave engine is `../rollout/engine.ts` (shared with firmware rollouts), the
 * config target (render, evaluate the applied revisions, set the group layer) is `rollout-step.ts`.
 * Every step writes the record *before* acting on it (a wave is marked released, then rendered;
 * rendering is idempotent), so a gateway killed at any point resumes from the record without
 * skipping or repeating a wave.
 *
 * Health gate of a wave: every device applied the revision (a refusal is a failure; an offline
 * device is pending unless --offline-fails), and then, for `soakMs`, every device that applied kept
 * reporting (presence heartbeats, judged on hub time): one that goes silent during the soak fails
 * the wave (`rollout-soak.ts`). Only a wave that passed and soaked lets the next one (or the finalizing) start.
 */
export const Wave = waveSchema(Id);
export type Wave = z.infer<typeof Wave>;

export const Rollout = z.object({
  id: Id,
  key: TokenPath,
  value: ConfigValue,
  group: Id,
  /** The group layer's value when the rollout was created (absent = not set). */
  previous: z.object({ set: z.boolean(), value: ConfigValue.optional() }),
  ...rolloutCoreShape(Id),
});
export type Rollout = z.infer<typeof Rollout>;

/** Devices whose rendered config carries the rollout's value (released waves of a live rollout). */
export function releasedDevices(r: Rollout): string[] {
  return releasedUnits(r);
}

// The engine's view of a config rollout: the schema must keep satisfying it.
export type _ConfigRolloutIsCore = Rollout extends RolloutCore ? true : never;
