#!/usr/bin/env node
// bench/commands: remote commands vs. plain core-NATS request/reply over the same hub↔leaf path.
// Run after `npx tsc -b`:  node bench/commands.mjs [--n 1000] [--concurrency 50]
// Measures, in one run against real servers (hub + one agent with its own leaf, link via LinkProxy):
//   1. core request/reply hub → leaf responder: p50/p99 of N sequential round trips, and req/s pipelined;
//   2. commands: p50/p99 of N sequential `ping`s, send → terminal state in KV `commands` (the gateway's
//      view: hub CMD → leaf mirror → agent → journal → UP → hub shard → gateway ingest → KV);
//   3. commands/s to one device: N pings sent with `concurrency` publishes in flight, until all ended.
// and prints the ratios. Numbers depend on the machine; this one is shared, so run it when idle.
import { parseArgs } from "node:util";
import { Fleet } from "@canopy/test/harness/index";
import { CommandSender } from "@canopy/gateway/commands/index";
import { KvWatchInclude } from "@nats-io/kv";
import { isTerminal, waitFor } from "@canopy/protocol";
import { emit, figure } from "./lib/report.mjs";

const { values } = parseArgs({ options: { n: { type: "string", default: "1000" }, concurrency: { type: "string", default: "50" } } });
const N = Number(values.n);
const CONC = Number(values.concurrency);
const DEV = "bench1";

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${x.toFixed(2)} ms`;

const fleet = await Fleet.start();
try {
  await fleet.startAgent(DEV, { heartbeat: "5s" });
  const hub = await fleet.hubConnection();
  const leaf = await fleet.leafConnection(DEV);
  const sender = await CommandSender.open(hub);

  // Terminal states as the gateway records them, pushed to us by a KV watch.
  const waiting = new Map();
  const watch = await sender.store.kv.watch({ key: `${DEV}.*`, include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      const rec = e.json();
      if (isTerminal(rec.state)) waiting.get(rec.id)?.(rec);
    }
  })();
  const sendAndWait = async () => {
    let resolve;
    const done = new Promise((r) => (resolve = r));
    const rec = await sender.send({ device: DEV, name: "ping" });
    waiting.set(rec.id, resolve);
    // A result may have landed between send() returning and the map entry: check once.
    const now = await sender.store.get(DEV, rec.id);
    if (now && isTerminal(now.record.state)) resolve(now.record);
    const final = await done;
    waiting.delete(rec.id);
    if (final.state !== "succeeded") throw new Error(`ping ${rec.id} ended ${final.state}: ${final.error?.message}`);
  };

  // Warm-up: the hub shard sources the device's UP a few seconds after the leaf connects.
  await waitFor(async () => (await Promise.race([sendAndWait().then(() => true), new Promise((r) => setTimeout(() => r(false), 5_000))])), {
    timeoutMs: 60_000,
    what: "a first ping round trip",
  });
  for (let i = 0; i < 20; i++) await sendAndWait();

  // 1. core request/reply baseline over the same link.
  const sub = leaf.subscribe(`local.bench.${DEV}`, { callback: (_e, m) => m.respond(m.data) });
  await leaf.flush();
  await waitFor(async () => hub.request(`local.bench.${DEV}`, "x", { timeout: 1_000 }).then(() => true, () => false), { timeoutMs: 20_000 });
  for (let i = 0; i < 100; i++) await hub.request(`local.bench.${DEV}`, "warm", { timeout: 5_000 });
  const rr = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await hub.request(`local.bench.${DEV}`, "ping", { timeout: 5_000 });
    rr.push(performance.now() - t);
  }
  let t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next++ < N) await hub.request(`local.bench.${DEV}`, "ping", { timeout: 10_000 });
    }),
  );
  const rrRate = N / ((performance.now() - t0) / 1000);
  sub.unsubscribe();

  // 2. command round trips, one at a time.
  const cmd = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await sendAndWait();
    cmd.push(performance.now() - t);
  }

  // 3. commands/s to one device.
  const wall0 = Date.now();
  t0 = performance.now();
  next = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next++ < N) await sendAndWait();
    }),
  );
  const cmdRate = N / ((performance.now() - t0) / 1000);
  watch.stop();
  // The agent's own view (its "command finished" log lines): how fast the device executes, without the
  // result's trip back through UP, the hub shard and the gateway's KV index.
  const finished = fleet.agent(DEV).proc.output
    .filter((l) => l.includes('"command finished"'))
    .map((l) => JSON.parse(l).time)
    .filter((t) => t >= wall0);
  const agentRate = finished.length > 1 ? finished.length / ((Math.max(...finished) - wall0) / 1000) : NaN;

  const r = {
    n: N,
    concurrency: CONC,
    reqReply: { p50Ms: pct(rr, 50), p99Ms: pct(rr, 99), perSec: rrRate },
    commands: { p50Ms: pct(cmd, 50), p99Ms: pct(cmd, 99), perSec: cmdRate, agentPerSec: agentRate },
  };
  const ratio = { p50: r.commands.p50Ms / r.reqReply.p50Ms, p99: r.commands.p99Ms / r.reqReply.p99Ms, throughput: r.reqReply.perSec / r.commands.perSec };
  console.log(`\nbench/commands  n=${N}  concurrency=${CONC}  (hub ↔ LinkProxy ↔ leaf of one agent, loopback)`);
  console.log(`                      p50          p99          per second`);
  console.log(`core request/reply    ${ms(r.reqReply.p50Ms).padEnd(12)} ${ms(r.reqReply.p99Ms).padEnd(12)} ${rrRate.toFixed(0)}`);
  console.log(`command round trip    ${ms(r.commands.p50Ms).padEnd(12)} ${ms(r.commands.p99Ms).padEnd(12)} ${cmdRate.toFixed(0)}`);
  console.log(`  (the agent itself finished ${agentRate.toFixed(0)} commands/s in step 3)`);
  console.log(`ratio (command / req-reply): p50 ×${ratio.p50.toFixed(1)}, p99 ×${ratio.p99.toFixed(1)}; throughput: req-reply is ×${ratio.throughput.toFixed(1)} commands/s`);
  emit("commands", [
    figure({ name: "command round trip p50 (vs core req/reply)", value: r.commands.p50Ms, unit: "ms", baseline: r.reqReply.p50Ms, goal: 5, goalOn: "value", better: "lower" }),
    figure({ name: "command round trip p99 (vs core req/reply)", value: r.commands.p99Ms, unit: "ms", baseline: r.reqReply.p99Ms, better: "lower" }),
    figure({ name: "commands/s to one device (vs req/reply/s)", value: r.commands.perSec, unit: "cmd/s", baseline: r.reqReply.perSec, goal: 1000, goalOn: "value", better: "higher" }),
  ], { n: N, concurrency: CONC, agentPerSec: agentRate });
} finally {
  await fleet.stop();
}
