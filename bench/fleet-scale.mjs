#!/usr/bin/env node
// bench/fleet-scale (issue 15, fleet scale): a reconnect storm. Run after `npx tsc -b`:
//   node bench/fleet-scale.mjs [--devices 1000] [--procs 2] [--heartbeat 5s]
// Starts a real hub (`canopy hub start`, operator mode) and N simulated agents (`canopy sim fleet`, a
// NATS connection and the hub credentials each) until every one is online, then SIGKILLs the hub and
// starts it again on the same ports and data. Measures, from the restarted hub's ready line:
//   baseline  every client connection is back (the hub's /varz `connections` back to its count
//             before the kill): the transport's own floor (nats.js reconnect wait + jitter)
//   online    every simulated device wrote a fresh status record (KV `status`, hub receive time after
//             the restart), i.e. `canopy device list` shows it online again
// and the hub nats-server's peak RSS and CPU during the storm, sampled from /varz every 250 ms.
import { parseArgs } from "node:util";
import { Fleet, CanopyProcess } from "@canopy/test/harness/index";
import { Kvm } from "@nats-io/kv";
import { waitFor } from "@canopy/protocol";
import { emit, figure } from "./lib/report.mjs";
import { sampler, varz } from "./lib/hub.mjs";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "1000" },
    procs: { type: "string", default: "2" },
    heartbeat: { type: "string", default: "5s" },
    "timeout-s": { type: "string", default: "120" },
  },
});
const N = Number(values.devices);
const PROCS = Number(values.procs);
const TIMEOUT_MS = Number(values["timeout-s"]) * 1000;

/** Devices whose status record the hub stored at or after `since` (ms). */
async function freshCount(nc, since) {
  const kv = await new Kvm(nc).open("status");
  let n = 0;
  for await (const e of await kv.watch({ include: "last_per_subject", ignoreDeletes: true })) {
    if (e.created.getTime() >= since && e.key.startsWith("sim-")) n++;
    if (e.delta === 0) break;
  }
  return n;
}

const fleet = await Fleet.start();
const sims = [];
try {
  const per = Math.ceil(N / PROCS);
  const t0 = Date.now();
  for (let p = 0; p < PROCS; p++) {
    const n = Math.min(per, N - p * per);
    sims.push(new CanopyProcess(["sim", "fleet", "--devices", String(n), "--first", String(p * per), "--server", fleet.hub.client, "--heartbeat", values.heartbeat, "--log-level", "warn"], fleet.env));
  }
  await Promise.all(sims.map((s) => s.waitForOutput(/"event":"sim-ready"/, 300_000)));
  const up = Date.now() - t0;
  let nc = await fleet.hubConnection();
  await waitFor(async () => (await freshCount(nc, 0)) >= N, { timeoutMs: 60_000, what: `${N} devices online` });
  const steady = await varz(fleet.hub.http);
  console.log(`fleet-scale: ${N} simulated devices (${PROCS} processes) up in ${up} ms; hub before the kill: ${steady.connections} connections, RSS ${(steady.mem / 2 ** 20).toFixed(0)} MiB`);

  const s = sampler(fleet.hub.http);
  const killed = Date.now();
  await fleet.restartHub();
  const ready = Date.now();
  console.log(`hub SIGKILLed and started again: ready ${ready - killed} ms after the kill`);
  nc = await fleet.hubConnection();
  let connectedMs;
  let onlineMs;
  let fresh = 0;
  const deadline = ready + TIMEOUT_MS;
  while (Date.now() < deadline && onlineMs === undefined) {
    if (connectedMs === undefined) {
      const v = await varz(fleet.hub.http).catch(() => undefined);
      if (v && v.connections >= steady.connections) connectedMs = Date.now() - ready;
    }
    fresh = await freshCount(nc, ready).catch(() => fresh);
    if (fresh >= N) onlineMs = Date.now() - ready;
    else await new Promise((r) => setTimeout(r, 200));
  }
  // A few more seconds after the storm: what the hub settles at.
  await new Promise((r) => setTimeout(r, 3_000));
  const after = await varz(fleet.hub.http);
  await s.stop();
  const mib = (b) => b / 2 ** 20;
  console.log(`hub restarted: all connections back in ${connectedMs ?? "—"} ms; ${fresh}/${N} devices online again in ${onlineMs ?? `> ${TIMEOUT_MS}`} ms`);
  console.log(`hub nats-server during the storm: peak RSS ${mib(s.peak.mem).toFixed(0)} MiB, peak CPU ${s.peak.cpu.toFixed(0)} % (${s.peak.samples} samples); 3 s after: RSS ${mib(after.mem).toFixed(0)} MiB`);
  emit("fleet-scale", [
    figure({ name: `reconnect storm: ${N} devices online after a hub restart (vs all connections back)`, value: onlineMs ?? TIMEOUT_MS, unit: "ms", baseline: connectedMs ?? null, goal: 15_000, goalOn: "value", better: "lower" }),
    figure({ name: `reconnect storm: hub nats-server peak RSS, ${N} devices`, value: Math.round(mib(s.peak.mem)), unit: "MiB", better: "lower" }),
    figure({ name: `reconnect storm: hub nats-server peak CPU, ${N} devices`, value: Math.round(s.peak.cpu), unit: "%", better: "lower" }),
  ], { devices: N, procs: PROCS, heartbeat: values.heartbeat, fresh, hubRestartMs: ready - killed, steadyRssMiB: Math.round(mib(steady.mem)), settledRssMiB: Math.round(mib(after.mem)) });
} finally {
  await Promise.allSettled(sims.map((p) => p.stop()));
  await fleet.stop();
}
