#!/usr/bin/env node
// bench/leaves (issue 15, fleet scale with real leaves): a hub restart with a backlog on every device.
// Run after `npm run build`:
//   node bench/leaves.mjs [--devices 100] [--per-device 100] [--down-s 15] [--heartbeat 5s] [--start-batch 4] [--timeout-s 180]
// Starts a real hub (`canopy hub start`) and N real devices (`canopy agent`, each with its own leaf
// nats-server and its hub link through a LinkProxy), `--start-batch` at a time. Then SIGKILLs the hub;
// while it is down every device's app publishes `--per-device` messages into its own leaf (acked by the
// leaf's UP stream), and the hub stays down until `--down-s` has passed since the kill. Measures, from
// the restarted hub's ready line:
//   baseline  every leaf link back (the hub's /leafz `leafnodes` back to its count before the kill)
//   value     every device's backlog in the hub shard (FLEET_UP_0 holds all `--per-device` messages of
//             `up.<device>.tlm.drain` for every device): every source resumed and drained
// and the hub nats-server's peak RSS and CPU from the kill to the end of the drain, sampled from /varz.
// Duration: the fleet start dominates (each device is enrolled by `canopy device add`, which mints
// its keys and TLS certificate, and started as a real agent): a batch of 4 took ~5 s on a busy 2-core
// box, so 100 devices ≈ 2–5 min, then --down-s, then the drain: ≈ 3–6 min in all, inside
// `npm run bench`'s 20-min per-bench limit (`node bench/run.mjs --skip leaves` leaves it out).
// Smoke runs: 3 devices × 50 messages, --down-s 5: 33 s wall; 5 devices × 100, batch 2: 43 s.
import { parseArgs } from "node:util";
import { Fleet, publishSeries } from "@canopy/test/harness/index";
import { jetstreamManager } from "@nats-io/jetstream";
import { emit, figure, percentile } from "./lib/report.mjs";
import { sampler, varz } from "./lib/hub.mjs";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "100" },
    "per-device": { type: "string", default: "100" },
    "down-s": { type: "string", default: "15" },
    heartbeat: { type: "string", default: "5s" },
    "start-batch": { type: "string", default: "4" },
    "timeout-s": { type: "string", default: "180" },
    "hub-ready-s": { type: "string", default: "300" },
  },
});
const N = Number(values.devices);
const PER = Number(values["per-device"]);
const DOWN_MS = Number(values["down-s"]) * 1000;
const BATCH = Math.max(1, Number(values["start-batch"]));
const TIMEOUT_MS = Number(values["timeout-s"]) * 1000;
/** The restarted hub's budget to print ready: 100 leaves dialling back in on a 2-core box slow it down. */
const HUB_READY_MS = Number(values["hub-ready-s"]) * 1000;
const SHARD = "FLEET_UP_0";
/** How many devices publish their backlog at once while the hub is down. */
const PUBLISH_PARALLEL = 10;

const devices = Array.from({ length: N }, (_, i) => `leaf-${String(i).padStart(3, "0")}`);
const subjectOf = (d) => `up.${d}.tlm.drain`;
const log = (s) => process.stderr.write(`leaves: ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function leafnodes(http) {
  const r = await fetch(`${http}/leafz`);
  return (await r.json()).leafnodes ?? 0;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function pool(items, limit, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  }));
}

/** Per-subject counts of `up.*.tlm.drain` in the hub shard: one stream info (paged by nats.js), not N. */
async function drainCounts(jsm) {
  const info = await jsm.streams.info(SHARD, { subjects_filter: "up.*.tlm.drain" });
  return info.state.subjects ?? {};
}

/** What has been measured so far: a run that fails part-way still ends with its JSON line. */
const partial = { devices: N, perDevice: PER, heartbeat: values.heartbeat, startBatch: BATCH };
let phase = "starting the hub";
let fleet;
try {
  fleet = await Fleet.start();
  // 1. The fleet: N real agents, BATCH at a time.
  phase = "starting the devices";
  const t0 = Date.now();
  for (let i = 0; i < N; i += BATCH) {
    await Promise.all(devices.slice(i, i + BATCH).map((d) => fleet.startAgent(d, { heartbeat: values.heartbeat })));
    const done = Math.min(i + BATCH, N);
    if (Math.floor(done / 10) > Math.floor(i / 10) || done === N) log(`${done}/${N} devices up (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const fleetUpMs = Date.now() - t0;
  partial.fleetUpMs = fleetUpMs;
  let links = 0;
  const linkDeadline = Date.now() + 60_000;
  while (Date.now() < linkDeadline && (links = await leafnodes(fleet.hub.http).catch(() => links)) < N) await sleep(250);
  const steady = await varz(fleet.hub.http);
  console.log(`leaves: ${N} real devices (agent + leaf nats-server each, ${BATCH} at a time) up in ${fleetUpMs} ms; hub before the kill: ${links} leaf links, ${steady.connections} client connections, RSS ${(steady.mem / 2 ** 20).toFixed(0)} MiB`);

  partial.leafLinks = links;
  partial.steadyRssMiB = Math.round(steady.mem / 2 ** 20);
  // 2. Hub SIGKILLed; every device's app publishes its backlog into its own leaf while it is down.
  phase = "the hub restart";
  const s = sampler(fleet.hub.http);
  let killedAt = 0;
  let publishedMs = 0;
  const acked = new Map();
  const t1 = Date.now();
  await fleet.restartHub({
    beforeStart: async () => {
      killedAt = Date.now();
      await pool(devices, PUBLISH_PARALLEL, (d) => fleet.withLeaf(d, async (nc) => {
        const got = await publishSeries(nc, { device: d, subject: subjectOf(d), count: PER, window: 20, retryUntil: killedAt + DOWN_MS + 60_000 });
        acked.set(d, got.size);
      }).catch((err) => {
        log(`${d}: publishing on its leaf failed: ${err.message}`);
        acked.set(d, 0);
      }));
      publishedMs = Date.now() - killedAt;
      partial.publishedMs = publishedMs;
      partial.acked = [...acked.values()].reduce((a, b) => a + b, 0);
      const rest = killedAt + DOWN_MS - Date.now();
      log(`hub down: ${[...acked.values()].reduce((a, b) => a + b, 0)}/${N * PER} messages acked by the leaves in ${publishedMs} ms; keeping the hub down ${Math.max(0, rest)} ms more`);
      if (rest > 0) await sleep(rest);
      phase = "waiting for the restarted hub to be ready";
    },
    readyMs: HUB_READY_MS,
  });
  const ready = Date.now();
  if (killedAt === 0) killedAt = t1;
  const downMs = ready - killedAt;
  console.log(`hub SIGKILLed and started again: ready ${downMs} ms after the kill (backlog published in ${publishedMs} ms)`);

  partial.downMs = downMs;
  // 3. From ready: every leaf link back (baseline), every device's backlog in the hub shard (value).
  phase = "the drain";
  const nc = await fleet.hubConnection();
  const jsm = await jetstreamManager(nc);
  const drainedAt = new Map();
  let linksBackMs;
  let drainedMs;
  let lastLinks = 0;
  const deadline = ready + TIMEOUT_MS;
  while (Date.now() < deadline && (drainedMs === undefined || linksBackMs === undefined)) {
    const tick = Date.now();
    if (linksBackMs === undefined) {
      lastLinks = await leafnodes(fleet.hub.http).catch(() => lastLinks);
      if (lastLinks >= links) linksBackMs = Date.now() - ready;
    }
    if (drainedMs === undefined) {
      const counts = await drainCounts(jsm).catch(() => undefined);
      if (counts) {
        for (const d of devices) {
          if (!drainedAt.has(d) && (counts[subjectOf(d)] ?? 0) >= (acked.get(d) ?? PER)) drainedAt.set(d, Date.now() - ready);
        }
        if (drainedAt.size === N) drainedMs = Date.now() - ready;
      }
    }
    const wait = 500 - (Date.now() - tick);
    if (wait > 0 && (drainedMs === undefined || linksBackMs === undefined)) await sleep(wait);
  }
  await s.stop();
  const after = await varz(fleet.hub.http);
  const final = await drainCounts(jsm).catch(() => ({}));
  const inHub = devices.reduce((a, d) => a + (final[subjectOf(d)] ?? 0), 0);
  const totalAcked = [...acked.values()].reduce((a, b) => a + b, 0);
  const perDev = [...drainedAt.values()];
  const mib = (b) => b / 2 ** 20;
  console.log(`hub restarted: ${lastLinks >= links ? links : lastLinks}/${links} leaf links back in ${linksBackMs ?? `> ${TIMEOUT_MS}`} ms; ${drainedAt.size}/${N} devices drained in ${drainedMs ?? `> ${TIMEOUT_MS}`} ms (per device: p50 ${perDev.length ? percentile(perDev, 50) : "—"} ms, max ${perDev.length ? Math.max(...perDev) : "—"} ms); ${inHub}/${totalAcked} acked messages in ${SHARD}`);
  console.log(`hub nats-server from the kill to the drain: peak RSS ${mib(s.peak.mem).toFixed(0)} MiB, peak CPU ${s.peak.cpu.toFixed(0)} % (${s.peak.samples} samples); after: RSS ${mib(after.mem).toFixed(0)} MiB`);
  emit("leaves", [
    figure({ name: `${N} real leaves: every source resumed and drained after a hub restart (vs every leaf link back)`, value: drainedMs ?? TIMEOUT_MS, unit: "ms", baseline: linksBackMs ?? null, goal: 30_000, goalOn: "value", better: "lower" }),
    figure({ name: `hub restart with ${N} real leaves: hub nats-server peak RSS`, value: Math.round(mib(s.peak.mem)), unit: "MiB", better: "lower" }),
    figure({ name: `hub restart with ${N} real leaves: hub nats-server peak CPU`, value: Math.round(s.peak.cpu), unit: "%", better: "lower" }),
  ], {
    devices: N, perDevice: PER, heartbeat: values.heartbeat, startBatch: BATCH, downMs, fleetUpMs, publishedMs,
    acked: totalAcked, inHub, drainedDevices: drainedAt.size, leafLinks: links,
    drainP50Ms: perDev.length ? percentile(perDev, 50) : null, drainMaxMs: perDev.length ? Math.max(...perDev) : null,
    steadyRssMiB: Math.round(mib(steady.mem)), settledRssMiB: Math.round(mib(after.mem)),
  });
} catch (err) {
  // No figure is made up: the JSON line says which phase failed and carries what was measured.
  log(`failed during ${phase}: ${err.message}`);
  emit("leaves", [], { ...partial, failed: phase, error: String(err.message).slice(0, 2000) });
  process.exitCode = 1;
} finally {
  await fleet?.stop();
}
