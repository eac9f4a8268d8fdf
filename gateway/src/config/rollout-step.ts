import type { KV } from "@nats-io/kv";
import { stableJson } from "../kv/read.js";
import type { ConfigLayers } from "./layers.js";
import type { FleetView } from "./fleet.js";
import type { Renderer } from "./render.js";
import type { RolloutStore, StoredRollout } from "./rollouts.js";
import { releasedDevices, type DeviceResult, type Rollout, type Wave } from "./rollout-model.js";
import { halt as haltWaves, stepWaves, withWave as withWaveOf, type RolloutTarget } from "../rollout/engine.js";
import { soak } from "./rollout-soak.js";
import type { Logger } from "../logging.js";

export interface StepDeps {
  store: RolloutStore;
  renderer: Renderer;
  fleet: FleetView;
  layers: ConfigLayers;
  cfg: KV;
  log: Logger;
  now?: () => number;
}

/**
 * Advances one config rollout by at most one transition (the shared wave engine, `../rollout/engine.ts`)
 * and returns the stored result. The config target: a released wave's devices get the value rendered
 * (the rollout's overlay), health = the device applied the rendered revision, completion writes the
 * group layer, a halt re-renders the released devices without the overlay (their previous value).
 */
export async function stepRollout(s: StoredRollout, d: StepDeps): Promise<StoredRollout> {
  const now = (d.now ?? Date.now)();
  return stepWaves(s, configTarget(d), d.store, d.log.child({ rollout: s.rollout.id }), now);
}

export function configTarget(d: StepDeps): RolloutTarget<Rollout> {
  return {
    awaited: "applied report of the new revision",
    release: (r, wave) => d.renderer.render({ devices: wave.devices, keys: [r.key] }).then(() => {}),
    evaluate: (r, wave) => evaluate(wave.devices, r.key, d),
    async finalize(r) {
      const cur = await d.layers.get({ kind: "group", group: r.group }, r.key);
      if (!cur || stableJson(cur.value) !== stableJson(r.value)) await d.layers.set({ kind: "group", group: r.group }, r.key, r.value);
    },
    async afterCompleted(r) {
      await d.renderer.render({ devices: (await d.fleet.members(r.group)).map((m) => m.id), keys: [r.key] });
      d.log.info({ rollout: r.id, key: r.key, group: r.group }, "config rollout completed: group layer set");
    },
    soak: (s, w, now, log) => soak(s, w, { ...d, log }, now, log),
    // The overlay is gone in the halting state: rendering gives the released devices their previous value.
    rollBack: (r) => d.renderer.render({ devices: releasedDevices(r), keys: [r.key] }).then(() => {}),
  };
}

/** ok: applied the rendered revision; failed: rejected it; offline: pending until it is back. */
async function evaluate(devices: readonly string[], key: string, d: StepDeps): Promise<Wave["results"]> {
  const out: Wave["results"] = {};
  for (const dev of devices) {
    const e = await d.cfg.get(`${dev}.${key}`);
    const target = e?.revision ?? 0;
    const st = await d.fleet.configState(dev);
    const k = st?.keys[key];
    let result: DeviceResult;
    let error: string | undefined;
    if (k && k.revision >= target) {
      result = k.status === "applied" ? "ok" : "failed";
      error = k.error;
    } else result = st?.online ? "waiting" : "offline";
    out[dev] = error ? { result, error } : { result };
  }
  return out;
}

/** Halts a config rollout (the engine's halt, for the soak step). */
export function halt(s: StoredRollout, d: StepDeps, reason: string, now: number, base: Rollout = s.rollout): Promise<StoredRollout> {
  return haltWaves(s, d.store, d.log.child({ rollout: s.rollout.id }), reason, now, base);
}

export function withWave(r: Rollout, i: number, w: Wave, now: number): Rollout {
  return withWaveOf(r, i, w, now);
}
