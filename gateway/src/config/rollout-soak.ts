import { stableJson } from "../kv/read.js";
import { MISSED_HEARTBEATS_OFFLINE } from "@canopy/protocol";
import type { StoredRollout } from "./rollouts.js";
import type { Rollout, Wave } from "./rollout-model.js";
import { halt, withWave, type StepDeps } from "./rollout-step.js";
import type { Logger } from "../logging.js";

/**
 * One step of wave `w`'s soak. Undefined once the soak time is over with every device that applied
 * still reporting; otherwise the rollout to return: unchanged (or with a device's suspicion noted)
 * while soaking, halting when more than --max-failures devices went silent.
 *
 * Silent: the gateway saw the device offline by presence (3 missed heartbeats, hub receive time) and
 * it stayed so for another 3 heartbeats of the gateway's own watching (`silentSince`, kept in the
 * record). A device that reports again meanwhile is cleared: after a hub restart every status is
 * stale at once, and that is the hub's outage, not the device's.
 */
export async function soak(s: StoredRollout, w: number, d: StepDeps, now: number, log: Logger): Promise<StoredRollout | undefined> {
  const r = s.rollout;
  const wave = r.waves[w] as Wave;
  const results = { ...wave.results };
  const silent: string[] = [];
  let suspects = 0;
  const error = `applied the revision, then went silent during the ${Math.round(r.options.soakMs / 1000)}s soak`;
  for (const dev of wave.devices) {
    const res = results[dev];
    if (res?.result !== "ok") continue;
    const st = await d.fleet.configState(dev, now);
    if (st?.online) {
      if (res.silentSince !== undefined) results[dev] = { result: "ok" };
      continue;
    }
    const since = res.silentSince ?? now;
    if (now - since >= MISSED_HEARTBEATS_OFFLINE * (st?.heartbeatMs ?? 5_000)) {
      silent.push(dev);
      results[dev] = { result: "failed", error };
    } else {
      suspects++;
      results[dev] = { result: "ok", silentSince: since };
    }
  }
  let next: Rollout = withWave(r, w, { ...wave, results }, now);
  if (silent.length > 0) {
    next = { ...next, failures: [...r.failures.filter((f) => !(f.wave === w && silent.includes(f.device))), ...silent.map((device) => ({ device, wave: w, error }))] };
    const failed = Object.values(results).filter((v) => v.result === "failed").length;
    if (failed > r.options.maxFailures) {
      log.warn({ wave: w + 1, silent }, "devices went silent during the soak");
      return halt(s, d, `wave ${w + 1}/${r.waves.length}: ${failed} failure(s), more than --max-failures ${r.options.maxFailures}: ${silent.map((x) => `${x}: ${error}`).join("; ")}`, now, next);
    }
  }
  if (stableJson(results) !== stableJson(wave.results)) s = await d.store.update(s, next);
  return suspects > 0 || now < (wave.passedAt ?? now) + r.options.soakMs ? s : undefined;
}
