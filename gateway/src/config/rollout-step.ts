import type { KV } from "@nats-io/kv";
import { stableJson } from "../kv/read.js";
import type { ConfigLayers } from "./layers.js";
import type { FleetView } from "./fleet.js";
import type { Renderer } from "./render.js";
import type { RolloutStore, StoredRollout } from "./rollouts.js";
import { releasedDevices, type DeviceResult, type Rollout, type Wave } from "./rollout-model.js";
import type { Logger } from "../logging.js";
import { soak } from "./rollout-soak.js";

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
 * Advances one rollout by at most one transition and returns the stored result. Each transition is
 * written (compare-and-set) before its side effects, and every side effect is idempotent, so running
 * a step again after a crash at any point finishes the transition without repeating it.
 */
export async function stepRollout(s: StoredRollout, d: StepDeps): Promise<StoredRollout> {
  const now = (d.now ?? Date.now)();
  const r = s.rollout;
  const log = d.log.child({ rollout: r.id });
  switch (r.state) {
    case "running":
      if (r.abortRequested) return halt(s, d, "aborted by operator", now);
      return advance(s, d, now, log);
    case "finalizing": {
      const cur = await d.layers.get({ kind: "group", group: r.group }, r.key);
      if (!cur || stableJson(cur.value) !== stableJson(r.value)) await d.layers.set({ kind: "group", group: r.group }, r.key, r.value);
      const done = await d.store.update(s, { ...r, state: "completed", finishedAt: now, updatedAt: now });
      await d.renderer.render({ devices: (await d.fleet.members(r.group)).map((m) => m.id), keys: [r.key] });
      log.info({ key: r.key, group: r.group }, "rollout completed: group layer set");
      return done;
    }
    case "halting": {
      // The overlay is gone in this state: rendering gives the released devices their previous value.
      await d.renderer.render({ devices: releasedDevices(r), keys: [r.key] });
      log.warn({ reason: r.reason }, "rollout halted; previous value restored on released devices");
      return d.store.update(s, { ...r, state: "halted", finishedAt: now, updatedAt: now });
    }
    default:
      return s;
  }
}

async function advance(s: StoredRollout, d: StepDeps, now: number, log: Logger): Promise<StoredRollout> {
  let r = s.rollout;
  const i = r.current;
  const wave = r.waves[i];
  const prev = r.waves[i - 1];
  if (prev?.passedAt !== undefined && prev.soakedAt === undefined && (!wave || wave.releasedAt === undefined)) {
    // Soak of the wave that passed: every device that applied must keep reporting until it ends.
    const soaking = await soak(s, i - 1, d, now, log);
    if (soaking) return soaking;
    s = await d.store.update(s, withWave(s.rollout, i - 1, { ...(s.rollout.waves[i - 1] as Wave), soakedAt: now }, now));
    r = s.rollout;
    log.info({ wave: i, of: r.waves.length }, "wave stayed healthy through its soak");
  }
  if (!wave) return d.store.update(s, { ...r, state: "finalizing", updatedAt: now });
  if (wave.releasedAt === undefined) {
    s = await d.store.update(s, withWave(r, i, { ...wave, releasedAt: now }, now));
    r = s.rollout;
    log.info({ wave: i + 1, of: r.waves.length, devices: wave.devices }, "wave released");
  }
  await d.renderer.render({ devices: wave.devices, keys: [r.key] });
  const w = r.waves[i] as Wave;
  const results = await evaluate(w.devices, r.key, d);
  const failed = Object.entries(results).filter(([, v]) => v.result === "failed" || (r.options.offlineFails && v.result === "offline"));
  const waiting = Object.entries(results).filter(([, v]) => v.result === "waiting");
  const failures = [
    ...r.failures.filter((f) => f.wave !== i),
    ...failed.map(([device, v]) => ({ device, wave: i, error: v.error ?? (v.result === "offline" ? "offline" : "failed") })),
  ];
  let next: Rollout = { ...withWave(r, i, { ...w, results }, now), failures };
  if (failed.length > r.options.maxFailures) {
    const detail = failed.map(([dev, v]) => `${dev}: ${v.error ?? v.result}`).join("; ");
    return halt({ ...s, rollout: r }, d, `wave ${i + 1}/${r.waves.length}: ${failed.length} failure(s), more than --max-failures ${r.options.maxFailures}: ${detail}`, now, next);
  }
  if (waiting.length === 0) {
    next = { ...withWave(next, i, { ...(next.waves[i] as Wave), passedAt: now }, now), current: i + 1 };
    log.info({ wave: i + 1, of: r.waves.length }, "wave applied; soaking");
    return d.store.update(s, next);
  }
  if (now - (w.releasedAt ?? now) > r.options.healthTimeoutMs) {
    const late = waiting.map(([dev]) => dev).join(", ");
    return halt(s, d, `wave ${i + 1}/${r.waves.length}: timeout after ${Math.round(r.options.healthTimeoutMs / 1000)}s: no applied report of the new revision from ${late}`, now, next);
  }
  if (stableJson(next.waves[i]?.results) === stableJson(r.waves[i]?.results) && next.failures.length === r.failures.length) return s;
  return d.store.update(s, next);
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

export async function halt(s: StoredRollout, d: StepDeps, reason: string, now: number, base: Rollout = s.rollout): Promise<StoredRollout> {
  d.log.warn({ rollout: s.rollout.id, reason }, "rollout halting");
  return d.store.update(s, { ...base, state: "halting", reason, updatedAt: now });
}

export function withWave(r: Rollout, i: number, w: Wave, now: number): Rollout {
  return { ...r, waves: r.waves.map((x, j) => (j === i ? w : x)), updatedAt: now };
}
