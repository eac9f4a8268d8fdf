import { CanopyError, ErrorCode, sleep } from "@canopy/protocol";
import type { RolloutCore, WaveT } from "../../rollout/model.js";
import type { Stored } from "../../rollout/engine.js";
import { shutdownSignal } from "../context.js";

/** How config and firmware rollouts show their waves (one engine, one view). */
const TERMINAL = new Set(["completed", "halted"]);

/** "2/3 applied, 1 waiting": how far a released wave is (`ok` names a healthy unit: applied, confirmed). */
export function waveProgress(w: WaveT, ok = "applied"): string {
  const n = (res: string): number => w.devices.filter((d) => w.results[d]?.result === res).length;
  const extra = [["waiting", n("waiting") + w.devices.filter((d) => !w.results[d]).length], ["offline", n("offline")], ["failed", n("failed")]] as const;
  return [`${n("ok")}/${w.devices.length} ${ok}`, ...extra.filter(([, c]) => c > 0).map(([k, c]) => `${c} ${k}`)].join(", ");
}

/** Offline units of released waves: pending, not failed (unless offline fails). */
export function withPending<R extends RolloutCore>(r: R): R & { pending: string[] } {
  const pending = r.waves.flatMap((w) => Object.entries(w.results).filter(([, v]) => v.result === "offline").map(([d]) => d));
  return { ...r, pending };
}

/** The waves and each unit's health, one line each (`note`: more about a unit, e.g. the version it ran). */
export function describeWaves(r: RolloutCore, ok = "applied", note: (unit: string) => string = () => ""): string[] {
  const lines: string[] = [];
  r.waves.forEach((w, i) => {
    const st = w.passedAt ? (w.soakedAt || r.options.soakMs === 0 ? "passed" : "soaking") : w.releasedAt ? (i === r.current && r.state === "running" ? "checking" : "released") : "not started";
    lines.push(`wave ${i + 1} (${w.percent}%): ${st}${w.releasedAt ? ` — ${waveProgress(w, ok)}` : ""}`);
    for (const d of w.devices) {
      const res = w.results[d];
      const label = !res ? "-" : res.result === "offline" ? "pending (offline)" : res.result;
      lines.push(`  ${d}: ${label}${res?.error ? `: ${res.error}` : ""}${note(d)}`);
    }
  });
  return lines;
}

/** Prints progress lines until the rollout completes or halts. */
export async function followRollout<R extends RolloutCore>(get: (id: string) => Promise<Stored<R> | undefined>, id: string, quiet: boolean, ok = "applied"): Promise<R> {
  const { signal } = shutdownSignal();
  let last = "";
  for (;;) {
    const s = await get(id);
    if (!s) throw new CanopyError(ErrorCode.NotFound, `rollout ${id} disappeared`);
    const r = s.rollout;
    const w = r.waves[Math.min(r.current, r.waves.length - 1)];
    const line = `${r.state} wave ${Math.min(r.current + 1, r.waves.length)}/${r.waves.length}${w?.releasedAt ? ` (${waveProgress(w, ok)})` : ""}${r.reason ? `: ${r.reason}` : ""}`;
    if (!quiet && line !== last) process.stdout.write(`${line}\n`);
    last = line;
    if (TERMINAL.has(r.state)) return r;
    if (!(await sleep(500, signal))) throw new CanopyError(ErrorCode.Cancelled, "stopped following; the rollout continues in the gateway");
  }
}
