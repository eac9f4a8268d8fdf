// Shared by every bench: one figure per goal, and the ONE JSON line a bench ends with.
//   {"bench":"<name>","figures":[{"name","value","unit","baseline","ratio","goal","better", ...}]}
// `ratio` is value / baseline (null without a baseline). `goalOn` says which of the two the goal
// bounds ("ratio" when the goal is relative to the baseline, "value" when it is absolute), and `met`
// is the verdict, so a script can check every goal from the output alone.
import { cpus, totalmem, hostname, loadavg, release } from "node:os";

/**
 * @param {{name: string, value: number, unit: string, baseline?: number|null, goal?: number|null,
 *   goalOn?: "ratio"|"value", better: "higher"|"lower", note?: string}} f
 */
export function figure(f) {
  const baseline = f.baseline ?? null;
  const ratio = baseline ? round(f.value / baseline, 3) : null;
  const goalOn = f.goalOn ?? (baseline ? "ratio" : "value");
  const goal = f.goal ?? null;
  const subject = goalOn === "ratio" ? ratio : f.value;
  const met = goal === null || subject === null || !Number.isFinite(subject) ? null : f.better === "higher" ? subject >= goal : subject <= goal;
  return {
    name: f.name,
    value: round(f.value, 3),
    unit: f.unit,
    baseline: baseline === null ? null : round(baseline, 3),
    ratio,
    goal,
    goalOn,
    better: f.better,
    met,
    ...(f.note ? { note: f.note } : {}),
  };
}

/** Prints the bench's last line. Nothing may be printed after it. */
export function emit(bench, figures, extra = {}) {
  process.stdout.write(`${JSON.stringify({ bench, figures, ...extra })}\n`);
}

export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function round(x, digits = 2) {
  if (typeof x !== "number" || !Number.isFinite(x)) return x;
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}

/** The machine a run was measured on, for the results table. */
export function machine() {
  const c = cpus();
  return {
    host: hostname(),
    cpu: c[0]?.model ?? "unknown",
    cores: c.length,
    memGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    loadavg: loadavg().map((x) => round(x, 2)),
  };
}

/** CPU milliseconds (user + system) a process has used, from /proc. */
export async function cpuMsOf(pid) {
  const { readFile } = await import("node:fs/promises");
  const f = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1].split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/** Resident set size of a process in KiB, from /proc. */
export async function rssKiBOf(pid) {
  const { readFile } = await import("node:fs/promises");
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}
