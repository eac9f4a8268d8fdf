import { stableJson } from "../kv/read.js";
import type { Logger } from "../logging.js";
import type { RolloutCore, WaveT } from "./model.js";

export interface Stored<R> {
  rollout: R;
  revision: number;
}

/** Compare-and-set writes of rollout records (throws on a lost race; the caller re-reads). */
export interface RolloutWriter<R> {
  update(s: Stored<R>, next: R): Promise<Stored<R>>;
}

/**
 * What a rollout changes, behind the one wave engine: config (render a key for a wave's devices, check
 * they applied the revision) or firmware (flash a wave's MCUs, check they confirmed and kept reporting).
 * Every method must be idempotent: a step may run again after a crash at any point.
 */
export interface RolloutTarget<R extends RolloutCore> {
  /** Puts the change on the wave's units. Called on every step of a released wave (drift repair). */
  release(r: R, wave: WaveT): Promise<void>;
  /** Health of each unit of the wave: ok, failed (with why), waiting, offline. */
  evaluate(r: R, wave: WaveT, now: number): Promise<WaveT["results"]>;
  /** All waves passed: make the change permanent. The record is then marked completed. */
  finalize(r: R): Promise<void>;
  /** After the record says completed (config: render with the overlay gone). */
  afterCompleted?(r: R): Promise<void>;
  /**
   * After a wave passed: one step of its soak (config: the devices keep reporting). Undefined once the
   * soak is over and healthy; otherwise the rollout to return (unchanged while soaking, or halting).
   * Without it a passed wave counts as soaked at once (firmware: the soak is part of the gate).
   */
  soak?(s: Stored<R>, wave: number, now: number, log: Logger): Promise<Stored<R> | undefined>;
  /** The rollout halted: put the released units back the way they were. The record is then marked halted. */
  rollBack(r: R): Promise<void>;
  /** What a unit still waiting at the health timeout did not report, e.g. "an applied report of the new revision". */
  readonly awaited: string;
}

/**
 * Advances one rollout by at most one transition and returns the stored result. Each transition is
 * written (compare-and-set) before its side effects, and every side effect is idempotent, so running
 * a step again after a crash at any point finishes the transition without repeating it.
 */
export async function stepWaves<R extends RolloutCore>(s: Stored<R>, target: RolloutTarget<R>, store: RolloutWriter<R>, log: Logger, now: number): Promise<Stored<R>> {
  const r = s.rollout;
  switch (r.state) {
    case "running":
      if (r.abortRequested) return halt(s, store, log, "aborted by operator", now);
      return advance(s, target, store, log, now);
    case "finalizing": {
      await target.finalize(r);
      const done = await store.update(s, { ...r, state: "completed", finishedAt: now, updatedAt: now });
      await target.afterCompleted?.(done.rollout);
      log.info("rollout completed");
      return done;
    }
    case "halting": {
      await target.rollBack(r);
      log.warn({ reason: r.reason }, "rollout halted; released units rolled back");
      return store.update(s, { ...r, state: "halted", finishedAt: now, updatedAt: now });
    }
    default:
      return s;
  }
}

async function advance<R extends RolloutCore>(s: Stored<R>, target: RolloutTarget<R>, store: RolloutWriter<R>, log: Logger, now: number): Promise<Stored<R>> {
  let r = s.rollout;
  const i = r.current;
  const wave = r.waves[i];
  const prev = r.waves[i - 1];
  if (prev?.passedAt !== undefined && prev.soakedAt === undefined && (!wave || wave.releasedAt === undefined)) {
    const soaking = target.soak ? await target.soak(s, i - 1, now, log) : undefined;
    if (soaking) return soaking;
    s = await store.update(s, withWave(s.rollout, i - 1, { ...(s.rollout.waves[i - 1] as WaveT), soakedAt: now }, now));
    r = s.rollout;
    log.info({ wave: i, of: r.waves.length }, "wave stayed healthy through its soak");
  }
  if (!wave) return store.update(s, { ...r, state: "finalizing", updatedAt: now });
  if (wave.releasedAt === undefined) {
    s = await store.update(s, withWave(r, i, { ...wave, releasedAt: now }, now));
    r = s.rollout;
    log.info({ wave: i + 1, of: r.waves.length, units: wave.devices }, "wave released");
  }
  const w = r.waves[i] as WaveT;
  await target.release(r, w);
  const results = await target.evaluate(r, w, now);
  const failed = Object.entries(results).filter(([, v]) => v.result === "failed" || (r.options.offlineFails && v.result === "offline"));
  const waiting = Object.entries(results).filter(([, v]) => v.result === "waiting");
  const failures = [
    ...r.failures.filter((f) => f.wave !== i),
    ...failed.map(([device, v]) => ({ device, wave: i, error: v.error ?? (v.result === "offline" ? "offline" : "failed") })),
  ];
  let next: R = { ...withWave(r, i, { ...w, results }, now), failures };
  if (failed.length > r.options.maxFailures) {
    const detail = failed.map(([dev, v]) => `${dev}: ${v.error ?? v.result}`).join("; ");
    return halt({ ...s, rollout: r }, store, log, `wave ${i + 1}/${r.waves.length}: ${failed.length} failure(s), more than --max-failures ${r.options.maxFailures}: ${detail}`, now, next);
  }
  if (waiting.length === 0) {
    next = { ...withWave(next, i, { ...(next.waves[i] as WaveT), passedAt: now }, now), current: i + 1 };
    log.info({ wave: i + 1, of: r.waves.length }, "wave passed its health gate; soaking");
    return store.update(s, next);
  }
  if (now - (w.releasedAt ?? now) > r.options.healthTimeoutMs) {
    const late = waiting.map(([dev]) => dev).join(", ");
    return halt(s, store, log, `wave ${i + 1}/${r.waves.length}: timeout after ${Math.round(r.options.healthTimeoutMs / 1000)}s: no ${target.awaited} from ${late}`, now, next);
  }
  if (stableJson(next.waves[i]?.results) === stableJson(r.waves[i]?.results) && next.failures.length === r.failures.length) return s;
  return store.update(s, next);
}

export async function halt<R extends RolloutCore>(s: Stored<R>, store: RolloutWriter<R>, log: Logger, reason: string, now: number, base: R = s.rollout): Promise<Stored<R>> {
  log.warn({ reason }, "rollout halting");
  return store.update(s, { ...base, state: "halting", reason, updatedAt: now });
}

export function withWave<R extends RolloutCore>(r: R, i: number, w: WaveT, now: number): R {
  return { ...r, waves: r.waves.map((x, j) => (j === i ? w : x)), updatedAt: now };
}
