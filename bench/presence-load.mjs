#!/usr/bin/env node
// bench/presence-load (issue 15, fleet scale: "hub load grows with what changes, not with fleet size").
// Run after `npx tsc -b`:
//   node bench/presence-load.mjs [--devices 1000] [--procs 2] [--heartbeat 5s] [--window-s 30]
// Starts a real hub (`canopy hub start`, operator mode) and N simulated agents (`canopy sim fleet`), once
// with `--presence full` (every heartbeat writes the full status record: the baseline, what agents did
// before) and once with `--presence compact` (what agents do now: the full record when its content
// changes, a compact beat to the memory-backed KV `beat` in between). In each mode, once every device
// is online and a heartbeat has passed, it measures over a quiet window:
//   msgs/s   messages the hub received (/varz in_msgs)  → hub operations/s per 1,000 devices
//   bytes/s  payload bytes the hub received (/varz in_bytes)
//   disk     bytes the hub nats-server wrote to disk (/proc/<pid>/io write_bytes)
//   CPU      hub nats-server CPU time (/proc/<pid>/stat utime+stime), ms per second
// Figures are per 1,000 devices, compact against full; the same window with no device connected (the
// hub's own floor: gateway tasks) is printed too, to tell presence from the rest.
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Fleet, CanopyProcess } from "@canopy/test/harness/index";
import { Kvm } from "@nats-io/kv";
import { waitFor } from "@canopy/protocol";
import { emit, figure } from "./lib/report.mjs";
import { varz } from "./lib/hub.mjs";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "1000" },
    procs: { type: "string", default: "2" },
    heartbeat: { type: "string", default: "5s" },
    "window-s": { type: "string", default: "30" },
  },
});
const N = Number(values.devices);
const PROCS = Number(values.procs);
const WINDOW_MS = Number(values["window-s"]) * 1000;
const HEARTBEAT_MS = Number(/^(\d+)s$/.exec(values.heartbeat)?.[1] ?? 5) * 1000;
const per1k = (v) => (v * 1000) / N;

/** The hub's nats-server: the nats-server process whose command line names this fleet's dir. */
function hubPid(dir) {
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (cmd.includes("nats-server") && cmd.includes(dir)) return Number(p);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

function proc(pid) {
  if (pid === undefined) return { disk: NaN, cpuMs: NaN };
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  const disk = Number(/write_bytes:\s*(\d+)/.exec(io)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]); // utime, stime (fields 14, 15)
  return { disk, cpuMs: ticks * 10 };
}

async function sample(fleet, pid) {
  const v = await varz(fleet.hub.http);
  return { t: Date.now(), msgs: v.in_msgs, bytes: v.in_bytes, ...proc(pid) };
}

/** Devices whose status record or beat the hub stored at or after `since`. */
async function seen(nc, since) {
  const ids = new Set();
  for (const bucket of ["status", "beat"]) {
    const kv = await new Kvm(nc).open(bucket);
    if ((await kv.status()).values === 0) continue;
    for await (const e of await kv.watch({ include: "last_per_subject", ignoreDeletes: true })) {
      if (e.created.getTime() >= since && e.key.startsWith("sim-")) ids.add(e.key);
      if (e.delta === 0) break;
    }
  }
  return ids.size;
}

/** The same figures over a window with no simulated device connected: the hub's own floor (gateway tasks). */
async function idle(fleet, pid) {
  const a = await sample(fleet, pid);
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const b = await sample(fleet, pid);
  const s = (b.t - a.t) / 1000;
  const r = { msgs: (b.msgs - a.msgs) / s, bytes: (b.bytes - a.bytes) / s, disk: (b.disk - a.disk) / s, cpu: (b.cpuMs - a.cpuMs) / s };
  console.log(`no devices: hub in ${r.msgs.toFixed(0)} msgs/s, ${(r.bytes / 1024).toFixed(1)} KiB/s payload, disk writes ${(r.disk / 1024).toFixed(1)} KiB/s, CPU ${r.cpu.toFixed(0)} ms/s`);
  return r;
}

async function phase(fleet, mode, pid) {
  const per = Math.ceil(N / PROCS);
  const sims = [];
  try {
    const t0 = Date.now();
    for (let p = 0; p < PROCS; p++) {
      const n = Math.min(per, N - p * per);
      sims.push(new CanopyProcess(["sim", "fleet", "--devices", String(n), "--first", String(p * per), "--server", fleet.hub.client,
        "--heartbeat", values.heartbeat, "--presence", mode, "--log-level", "warn"], fleet.env));
    }
    await Promise.all(sims.map((s) => s.waitForOutput(/"event":"sim-ready"/, 300_000)));
    const nc = await fleet.hubConnection();
    await waitFor(async () => (await seen(nc, t0)) >= N, { timeoutMs: 120_000, intervalMs: 1_000, what: `${N} devices online (${mode})` });
    // Past the start (every device's first full record) and one heartbeat: the steady state.
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS + 2_000));
    const a = await sample(fleet, pid);
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const b = await sample(fleet, pid);
    const s = (b.t - a.t) / 1000;
    const r = { msgs: (b.msgs - a.msgs) / s, bytes: (b.bytes - a.bytes) / s, disk: (b.disk - a.disk) / s, cpu: (b.cpuMs - a.cpuMs) / s };
    console.log(`${mode}: ${N} devices, ${s.toFixed(1)} s window: hub in ${r.msgs.toFixed(0)} msgs/s, ${(r.bytes / 1024).toFixed(1)} KiB/s payload, disk writes ${(r.disk / 1024).toFixed(1)} KiB/s, CPU ${r.cpu.toFixed(0)} ms/s`);
    return r;
  } finally {
    await Promise.allSettled(sims.map((p) => p.stop()));
  }
}

const fleet = await Fleet.start();
try {
  const pid = hubPid(fleet.dir.path);
  if (pid === undefined) console.log("hub nats-server pid not found: disk and CPU figures are NaN");
  const floor = await idle(fleet, pid);
  const full = await phase(fleet, "full", pid);
  const compact = await phase(fleet, "compact", pid);
  // What presence itself costs: each mode minus the hub's floor with no device connected.
  const net = (r, k) => Math.round(per1k(r[k] - floor[k]));
  console.log(`presence alone per 1,000 devices (minus the floor): full ${net(full, "msgs")} msg/s, ${net(full, "bytes")} B/s, disk ${net(full, "disk")} B/s, CPU ${net(full, "cpu")} ms/s; compact ${net(compact, "msgs")} msg/s, ${net(compact, "bytes")} B/s, disk ${net(compact, "disk")} B/s, CPU ${net(compact, "cpu")} ms/s`);
  const f = (name, unit, key) => figure({ name, value: per1k(compact[key]), unit, baseline: per1k(full[key]), better: "lower" });
  emit("presence-load", [
    f(`hub messages in per 1,000 devices, steady state, heartbeat ${values.heartbeat} (compact beats vs full status every beat)`, "msg/s", "msgs"),
    f("hub payload bytes in per 1,000 devices (compact vs full)", "B/s", "bytes"),
    f("hub nats-server disk writes per 1,000 devices (compact vs full)", "B/s", "disk"),
    f("hub nats-server CPU per 1,000 devices (compact vs full)", "ms/s", "cpu"),
  ], { devices: N, procs: PROCS, heartbeat: values.heartbeat, windowS: WINDOW_MS / 1000, floor });
} finally {
  await fleet.stop();
}
