#!/usr/bin/env node
// Soak: steady telemetry from N devices (real hub, agents, leaves, one bridge with MQTT clients) for
// --minutes, with a fault every --fault-every seconds, cycling hub SIGKILL, leaf SIGKILL, agent SIGKILL,
// bridge SIGKILL and a link cut. At the end every acked message must be in the hub exactly once, in order
// per source, and the resident memory of the processes that lived through it may have grown < 5 % between
// the end of the warm-up and the end, both samples taken right after a full GC in every agent (--no-settle:
// raw samples; see settle.mjs for why). Prints progress on stderr and ONE JSON line of results on stdout; exit 1 on a failed check.
//
//   npm run soak                                   # 30 minutes, 20 devices
//   npm run soak -- --minutes 2 --devices 5        # a smoke run
import { readFileSync, readdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { Fleet, freePort, publishSeries, readShard, waitForCount, natsServerChild } from "../dist/harness/index.js";
import { bridgePid, countSource, mqttLoad } from "../dist/faults/matrix.js";
import { collectGarbage, inspectorUrl } from "./settle.mjs";

const { values: o } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    devices: { type: "string", default: "20" },
    rate: { type: "string", default: "5" },
    "fault-every": { type: "string", default: "30" },
    "warmup-share": { type: "string", default: "0.2" },
    // Compare memory after a full GC in each agent (through its inspector): see settle.mjs.
    settle: { type: "boolean", default: true },
  },
});
const minutes = Number(o.minutes);
const devices = Number(o.devices);
const rate = Number(o.rate);
const faultEvery = Number(o["fault-every"]) * 1000;
if (!(minutes > 0) || !(devices >= 1 && devices <= 200) || !(rate > 0) || !(faultEvery >= 5000)) {
  console.error("usage: soak.mjs [--minutes 30] [--devices 20] [--rate 5 msgs/s per device] [--fault-every 30 s, ≥ 5]");
  process.exit(2);
}
const log = (msg) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resident memory (KiB) by pid of every process in the given process groups (the fleet's daemons and children). */
function rssKiB(groups, field = "VmRSS") {
  const out = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (!groups.has(pgid)) continue;
      const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      // Keyed by pid and start time, so a restarted process is a new one.
      if (m) out.set(`${pid}:${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`, Number(m[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}
const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);

/** What a process is, for the per-kind breakdown: hub/leaf nats-server, agent, bridge, gateway. */
const kinds = new Map();
function kindOf(key) {
  if (kinds.has(key)) return kinds.get(key);
  let kind = "other";
  try {
    const args = readFileSync(`/proc/${key.split(":")[0]}/cmdline`, "utf8").split("\0");
    if (args[0]?.endsWith("nats-server")) kind = args.some((a) => a.includes("/hub/")) ? "hub nats-server" : "leaf nats-server";
    else if (args.includes("agent")) kind = "agent";
    else if (args.includes("bridge")) kind = "bridge";
    else if (args.includes("hub")) kind = "gateway";
  } catch {
    /* exited */
  }
  kinds.set(key, kind);
  return kind;
}

const fleet = await Fleet.start();
let stopping = false;
const cleanup = async () => {
  stopping = true;
  await fleet.stop().catch(() => {});
};
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));

const ids = Array.from({ length: devices }, (_, i) => `soak${String(i).padStart(3, "0")}`);
const mqttPort = await freePort();
const bridgeSpec = { args: ["--bridge-mqtt", `127.0.0.1:${mqttPort}`, "--bridge-mqtt-anonymous"] };
// With --settle every agent (and the bridge it starts) opens an inspector on a free loopback port.
const agentEnv = o.settle ? { env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --inspect=127.0.0.1:0`.trim() } } : {};
const specOf = (d) => ({ ...(d === ids[0] ? bridgeSpec : {}), ...agentEnv });

/** A full GC in every agent, so the next memory sample is live memory; returns how many took it. */
async function settleAgents() {
  const urls = [...fleet.agents.values()].map((a) => inspectorUrl(a.proc.output)).filter(Boolean);
  const ok = await Promise.all(urls.map((u) => collectGarbage(u)));
  await sleep(1_000); // freed pages go back to the OS
  return ok.filter(Boolean).length;
}
log(`starting a hub and ${devices} devices`);
for (let i = 0; i < ids.length; i += 4) await Promise.all(ids.slice(i, i + 4).map((d) => fleet.startAgent(d, specOf(d))));

// Per device: an app publishing `rate` msgs/s with its own ids, reconnecting when the agent (and leaf) restarted.
const apps = ids.map((d) => ({ d, subject: `up.${d}.tlm.soak`, acked: new Set(), next: 0, nc: undefined, url: "" }));
async function appLoop(app) {
  while (!stopping) {
    const t0 = Date.now();
    try {
      const url = fleet.agent(app.d).leafUrl;
      if (!app.nc || app.url !== url) {
        await app.nc?.close().catch(() => {});
        app.nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
        app.url = url;
      }
      const got = await publishSeries(app.nc, { device: app.d, subject: app.subject, from: app.next, count: rate, window: rate, retryUntil: Date.now() + 20_000 });
      for (const i of got) app.acked.add(i);
      app.next += rate;
    } catch {
      await sleep(500);
    }
    await sleep(Math.max(0, 1000 - (Date.now() - t0)));
  }
}
const appRuns = apps.map(appLoop);
// MQTT: 5 clients on the first device's bridge, a burst of 200 QoS1 each every 20 s.
const bursts = [];
const mqttLoop = (async () => {
  for (let b = 0; !stopping; b++) {
    const load = mqttLoad(fleet, { device: ids[0], port: mqttPort, metric: `b${b}`, clients: 5, perClient: 200 });
    bursts.push(load);
    await Promise.race([load.done, sleep(60_000)]);
    await load.stop();
    await sleep(20_000);
  }
})();

const faults = ["hub", "leaf", "agent", "bridge", "link"];
const injected = Object.fromEntries(faults.map((f) => [f, 0]));
const endAt = Date.now() + minutes * 60_000;
const warmupAt = Date.now() + Number(o["warmup-share"]) * minutes * 60_000;
const groups = () => new Set([fleet.hub.proc.pid, ...[...fleet.agents.values()].map((a) => a.proc.pid)]);
let rssStart;
// RSS counts the file pages a process maps (the node binary, LMDB's memory-mapped files): anonymous
// memory (heaps) is reported beside it, as that is where a leak would show.
let anonStart;
let rssPeak = 0;
/** RSS right after a full GC in every agent (with --settle), at the end of the warm-up and at the end. */
let settledStart;
let settledEnd;
const settledAt = {};
for (let k = 0; Date.now() < endAt; k++) {
  await sleep(Math.min(faultEvery, Math.max(0, endAt - Date.now())));
  const rssNow = rssKiB(groups());
  const rss = sum(rssNow);
  rssPeak = Math.max(rssPeak, rss);
  if (rssStart === undefined && Date.now() >= warmupAt) {
    rssStart = rssNow;
    anonStart = rssKiB(groups(), "RssAnon");
    if (o.settle) {
      settledAt.start = await settleAgents();
      settledStart = rssKiB(groups());
    }
  }
  if (Date.now() >= endAt) break;
  const fault = faults[k % faults.length];
  const d = fault === "bridge" ? ids[0] : ids[(k * 7) % ids.length];
  const a = fleet.agent(d);
  try {
    if (fault === "hub") await fleet.restartHub();
    else if (fault === "leaf") process.kill(await natsServerChild(a.proc.pid), "SIGKILL");
    else if (fault === "bridge") process.kill(bridgePid(a), "SIGKILL");
    else if (fault === "agent") {
      a.proc.killGroup("SIGKILL");
      await a.proc.exited;
      await fleet.startAgent(d, { enroll: false, ...specOf(d) });
    } else {
      a.link.cut();
      await sleep(5_000);
      a.link.restore();
    }
    injected[fault]++;
    log(`${fault} fault on ${fault === "hub" ? "the hub" : d}; rss ${Math.round(rss / 1024)} MiB; acked ${apps.reduce((s, x) => s + x.acked.size, 0)}`);
  } catch (err) {
    log(`fault ${fault} failed: ${err.message}`);
  }
}
const rssEnd = rssKiB(groups());
const anonEnd = rssKiB(groups(), "RssAnon");
if (o.settle) {
  settledAt.end = await settleAgents();
  settledEnd = rssKiB(groups());
}
// Settled growth over the same survivors (a process missing from either settled sample is left out).
const settledKept = settledStart && settledEnd ? [...settledStart.keys()].filter((k) => settledEnd.has(k) && rssStart?.has(k) && rssEnd.has(k)) : [];
const settledKeptStart = settledKept.reduce((a, k) => a + settledStart.get(k), 0);
const settledKeptEnd = settledKept.reduce((a, k) => a + settledEnd.get(k), 0);
for (const k of [...(rssStart?.keys() ?? []), ...rssEnd.keys()]) kindOf(k);
// Growth over the processes alive from the end of the warm-up to the end (restarted ones start small).
const kept = [...(rssStart ?? new Map()).keys()].filter((k) => rssEnd.has(k));
const keptStart = kept.reduce((a, k) => a + rssStart.get(k), 0);
const keptEnd = kept.reduce((a, k) => a + rssEnd.get(k), 0);
stopping = true;
await Promise.all(appRuns);
await mqttLoop;
log("publishing stopped; checking the hub");

const hub = await fleet.hubConnection();
let sent = 0, acked = 0, arrived = 0, duplicates = 0, orderViolations = 0, missing = 0;
for (const app of apps) {
  sent += app.next;
  acked += app.acked.size;
  await app.nc?.close().catch(() => {});
  await waitForCount(hub, "FLEET_UP_0", app.subject, app.acked.size, 180_000).catch((err) => log(err.message));
  const c = countSource((await readShard(hub, "FLEET_UP_0", app.subject)).map(Number), app.acked);
  arrived += c.arrived;
  duplicates += c.duplicates;
  orderViolations += c.orderViolations;
  missing += c.missing;
}
for (const b of bursts) {
  const c = await b.check().catch((err) => (log(err.message), { arrived: 0, duplicates: 0, orderViolations: 0, missing: b.acked() }));
  sent += 1000;
  acked += b.acked();
  arrived += c.arrived;
  duplicates += c.duplicates;
  orderViolations += c.orderViolations;
  missing += c.missing;
}
await fleet.stop();
const growth = keptStart > 0 ? (keptEnd - keptStart) / keptStart : 0;
// Survivors' growth per kind of process (MiB at the end of the warm-up → at the end).
const byKind = {};
for (const k of kept) {
  const e = (byKind[kindOf(k)] ??= { n: 0, startMiB: 0, endMiB: 0, anonStartMiB: 0, anonEndMiB: 0 });
  e.n++;
  e.startMiB += rssStart.get(k) / 1024;
  e.endMiB += rssEnd.get(k) / 1024;
  e.anonStartMiB += (anonStart.get(k) ?? 0) / 1024;
  e.anonEndMiB += (anonEnd.get(k) ?? 0) / 1024;
}
const pct = (a, b) => (a > 0 ? Math.round(((b - a) / a) * 1000) / 10 : 0);
for (const e of Object.values(byKind)) {
  e.growthPct = pct(e.startMiB, e.endMiB);
  e.anonGrowthPct = pct(e.anonStartMiB, e.anonEndMiB);
  for (const f of ["startMiB", "endMiB", "anonStartMiB", "anonEndMiB"]) e[f] = Math.round(e[f] * 10) / 10;
}
const anonKeptStart = kept.reduce((a, k) => a + (anonStart.get(k) ?? 0), 0);
const anonKeptEnd = kept.reduce((a, k) => a + (anonEnd.get(k) ?? 0), 0);
const result = {
  soak: {
    minutes, devices, ratePerDevice: rate, faults: injected, sent, acked, arrived, duplicates, orderViolations, lost: missing,
    rssFleetStartMiB: Math.round(sum(rssStart ?? new Map()) / 1024), rssFleetEndMiB: Math.round(sum(rssEnd) / 1024), rssFleetPeakMiB: Math.round(rssPeak / 1024),
    survivors: kept.length, rssSurvivorsStartMiB: Math.round(keptStart / 1024), rssSurvivorsEndMiB: Math.round(keptEnd / 1024),
    rssGrowthPct: Math.round(growth * 1000) / 10,
    anonSurvivorsStartMiB: Math.round(anonKeptStart / 1024), anonSurvivorsEndMiB: Math.round(anonKeptEnd / 1024), anonGrowthPct: pct(anonKeptStart, anonKeptEnd),
    survivorsByKind: byKind,
    ...(o.settle
      ? {
          settled: {
            agentsCollected: settledAt, survivors: settledKept.length,
            rssStartMiB: Math.round(settledKeptStart / 1024), rssEndMiB: Math.round(settledKeptEnd / 1024),
            rssGrowthPct: pct(settledKeptStart, settledKeptEnd),
          },
        }
      : {}),
  },
};
// The memory bound: survivors' RSS after a full GC (with --settle), else the raw RSS.
const boundGrowth = o.settle && settledKeptStart > 0 ? (settledKeptEnd - settledKeptStart) / settledKeptStart : growth;
result.soak.memoryBound = { on: o.settle ? "rss after a full GC in each agent" : "raw rss", growthPct: Math.round(boundGrowth * 1000) / 10, limitPct: 5 };
result.soak.ok = missing === 0 && duplicates === 0 && orderViolations === 0 && boundGrowth < 0.05;
console.log(JSON.stringify(result));
process.exit(result.soak.ok ? 0 : 1);
