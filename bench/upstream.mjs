#!/usr/bin/env node
// Store-and-forward throughput, Canopy vs plain nats.js, measured in the same run.
// (a) drain after an outage: N messages wait in a leaf stream, then the hub starts sourcing it; time
//     until all N are in the hub. Canopy: the agent's UP + `device add` (shard source). Baseline: a
//     hand-made leaf stream + hub stream with one external source, plain nats.js.
// (b) publish rate: the agent's UpPublisher (LMDB outbox + msg id) vs a plain JetStream publish loop
//     with a 1k window, on the same kind of leaf.
// (c) the cost of durability: JetStream publishes (window 100) into the agent's UP on a leaf with
//     sync_interval "always" (fsync before every ack), "100ms" (Canopy's default) and "2m"
//     (nats-server's own default, i.e. practically never). Baseline: 100ms.
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Fleet, TestServer, tempDir, publishSeries, waitForCount } from "@canopy/test/harness/index";
import { Registry } from "@canopy/gateway/registry/devices";
import { UpPublisher } from "@canopy/agent/up/publisher";
import { ensureUpStream, DEFAULT_UP_LIMITS } from "@canopy/agent/up/stream";
import { AgentState } from "@canopy/agent/state/store";
import { createLogger } from "@canopy/agent/logging";
import { emit, figure } from "./lib/report.mjs";

const N = Number(process.env.CANOPY_BENCH_MSGS ?? 100_000);
const PUB_N = Number(process.env.CANOPY_BENCH_PUB_MSGS ?? 20_000);
const SYNC_N = Number(process.env.CANOPY_BENCH_SYNC_MSGS ?? 5_000);
const rate = (n, ms) => Math.round((n / ms) * 1000);

async function canopyDrain() {
  const fleet = await Fleet.start();
  try {
    await fleet.startAgent("bench1", { enroll: false, heartbeat: "5s" });
    const leaf = await fleet.leafConnection("bench1");
    await publishSeries(leaf, { device: "bench1", subject: "up.bench1.tlm.x", count: N, window: 1000 });
    const hub = await fleet.hubConnection();
    const t0 = Date.now();
    await (await Registry.open(hub)).enroll("bench1", []);
    await waitForCount(hub, "FLEET_UP_0", "up.bench1.tlm.x", N, 300_000);
    return Date.now() - t0;
  } finally {
    await fleet.stop();
  }
}

async function plainDrain() {
  const dir = await tempDir();
  const hub = await TestServer.hub(join(dir.path, "hub"));
  const leaf = await TestServer.leaf(join(dir.path, "leaf"), "plain1", hub.ports.leaf, await hub.deviceAuth("plain1", join(dir.path, "auth")));
  try {
    await hub.waitForLeaves(1);
    const lnc = await connect({ servers: leaf.url });
    await (await jetstreamManager(lnc)).streams.add({ name: "UP", subjects: ["up.plain1.>"], duplicate_window: 120e9 });
    await publishSeries(lnc, { device: "plain1", subject: "up.plain1.tlm.x", count: N, window: 1000 });
    const hnc = await hub.connect();
    const t0 = Date.now();
    await (await jetstreamManager(hnc)).streams.add({ name: "FLEET", sources: [{ name: "UP", external: { api: "$JS.plain1.API", deliver: "du.plain1" } }] });
    await waitForCount(hnc, "FLEET", "up.plain1.tlm.x", N, 300_000);
    const ms = Date.now() - t0;
    await lnc.close();
    await hnc.close();
    return ms;
  } finally {
    await leaf.stop();
    await hub.stop();
    await dir.remove();
  }
}

async function publishRates() {
  const dir = await tempDir();
  const hub = await TestServer.hub(join(dir.path, "hub"));
  const leaf = await TestServer.leaf(join(dir.path, "leaf"), "pub1", hub.ports.leaf);
  const nc = await connect({ servers: leaf.url });
  try {
    await ensureUpStream(await jetstreamManager(nc), "pub1", DEFAULT_UP_LIMITS); // the agent's own UP
    const state = AgentState.open(join(dir.path, "agent"));
    const ac = new AbortController();
    const pub = new UpPublisher("pub1", nc, state, createLogger("error"), ac.signal);
    const plain = (n, subject) => publishSeries(nc, { device: "pub1", subject, count: n, window: 1000 });
    const canopy = async (n, subject) => {
      let next = 0;
      const worker = async () => {
        while (next < n) {
          next++;
          await pub.publish(subject, "x".repeat(8));
        }
      };
      await Promise.all(Array.from({ length: 1000 }, worker));
    };
    // Both warmed up first (JIT), then measured back to back.
    await plain(2_000, "up.pub1.tlm.warm");
    await canopy(2_000, "up.pub1.tlm.warm");
    let t0 = Date.now();
    await plain(PUB_N, "up.pub1.tlm.plain");
    const plainMs = Date.now() - t0;
    t0 = Date.now();
    await canopy(PUB_N, "up.pub1.tlm.canopy");
    const canopyMs = Date.now() - t0;
    ac.abort();
    await state.close();
    return { plainMs, canopyMs };
  } finally {
    await nc.close();
    await leaf.stop();
    await hub.stop();
    await dir.remove();
  }
}

async function syncRate(syncInterval) {
  const dir = await tempDir();
  const hub = await TestServer.hub(join(dir.path, "hub"));
  const leaf = await TestServer.leaf(join(dir.path, "leaf"), "sync1", hub.ports.leaf, undefined, { syncInterval });
  const nc = await connect({ servers: leaf.url });
  try {
    await ensureUpStream(await jetstreamManager(nc), "sync1", DEFAULT_UP_LIMITS);
    await publishSeries(nc, { device: "sync1", subject: "up.sync1.tlm.warm", count: 1_000, window: 100 });
    const t0 = Date.now();
    const acked = await publishSeries(nc, { device: "sync1", subject: "up.sync1.tlm.x", count: SYNC_N, window: 100 });
    if (acked.size !== SYNC_N) throw new Error(`sync ${syncInterval}: ${acked.size} of ${SYNC_N} acked`);
    return rate(SYNC_N, Date.now() - t0);
  } finally {
    await nc.close();
    await leaf.stop();
    await hub.stop();
    await dir.remove();
  }
}

const plain = await plainDrain();
const canopy = await canopyDrain();
console.log(`(a) drain of ${N} after an outage: canopy ${rate(N, canopy)} msg/s (${canopy} ms), plain nats.js ${rate(N, plain)} msg/s (${plain} ms), ratio canopy/plain = ${(plain / canopy).toFixed(2)}`);
const p = await publishRates();
console.log(`(b) publish ${PUB_N}, window 1000: canopy UpPublisher ${rate(PUB_N, p.canopyMs)} msg/s, plain JetStream ${rate(PUB_N, p.plainMs)} msg/s, ratio canopy/plain = ${(p.plainMs / p.canopyMs).toFixed(2)}`);
const sync = { always: await syncRate("always"), "100ms": await syncRate("100ms"), "2m": await syncRate("2m") };
console.log(`(c) publish ${SYNC_N}, window 100, by leaf sync_interval: always ${sync.always} msg/s, 100ms ${sync["100ms"]} msg/s, 2m ${sync["2m"]} msg/s; always/100ms = ${(sync.always / sync["100ms"]).toFixed(2)}`);
emit("upstream", [
  figure({ name: "UpPublisher vs plain JetStream publish", value: rate(PUB_N, p.canopyMs), unit: "msg/s", baseline: rate(PUB_N, p.plainMs), goal: 1.0, better: "higher" }),
  figure({ name: "drain after an outage: UP → shard vs hand-made source", value: rate(N, canopy), unit: "msg/s", baseline: rate(N, plain), better: "higher" }),
  figure({ name: "publish into UP, leaf sync_interval always vs 100ms (the cost of a zero power-cut window)", value: sync.always, unit: "msg/s", baseline: sync["100ms"], better: "higher" }),
  figure({ name: "publish into UP, leaf sync_interval 2m (nats-server default) vs 100ms", value: sync["2m"], unit: "msg/s", baseline: sync["100ms"], better: "higher" }),
], { drainMsgs: N, publishMsgs: PUB_N, syncMsgs: SYNC_N, syncRates: sync });
