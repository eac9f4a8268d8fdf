#!/usr/bin/env node
// bench/commands: remote commands vs. plain core-NATS request/reply over the same hub↔leaf path.
// Run after `npx tsc -b`:  node bench/commands.mjs [--n 1000] [--rate-n 3000] [--concurrency 50]
// Measures, in one run against real servers (hub + one agent with its own leaf, link via LinkProxy):
//   1. core request/reply hub → leaf responder: p50/p99 of N sequential round trips, and req/s pipelined;
//   2. commands: p50/p99 of N sequential `ping`s, send → terminal, waited for as `cmd send --wait` does
//      (waitForCommands with a ResultFeed: the result as it crosses the hub, else KV `commands`;
//      hub CMD → leaf mirror → agent → journal → UP → hub);
//   3. commands/s to one device: `--rate-n` pings sent with `concurrency` in flight, until all ended
//      (3,000: a 1,000-command window lasts about a second, and consecutive runs measured 790–1,180/s).
//   4. one command to `--fanout` (1,000) simulated devices (`canopy sim fleet --commands`): from the first
//      send (`--fanout-inflight`, default 256 as `canopy cmd send --group`) until every one is terminal in KV `commands`
//      (waitForCommands, as `--wait`); baseline: a live query answered by the same devices (core
//      scatter-gather). `--fanout 0` skips it.
// and prints the ratios. Numbers depend on the machine; this one is shared, so run it when idle.
import { parseArgs } from "node:util";
import { Fleet, CanopyProcess } from "@canopy/test/harness/index";
import { CommandSender, ResultFeed, resolveTargets, waitForCommands } from "@canopy/gateway/commands/index";
import { runQuery } from "@canopy/gateway/query/index";
import { KvWatchInclude } from "@nats-io/kv";
import { Subjects, isTerminal, waitFor } from "@canopy/protocol";
import { emit, figure } from "./lib/report.mjs";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1000" },
    "rate-n": { type: "string", default: "3000" },
    concurrency: { type: "string", default: "50" },
    fanout: { type: "string", default: "1000" },
    "fanout-procs": { type: "string", default: "2" },
    "fanout-runs": { type: "string", default: "3" },
    "fanout-inflight": { type: "string", default: "256" },
  },
});
const FANOUT = Number(values.fanout);
const N = Number(values.n);
const RATE_N = Number(values["rate-n"]);
const CONC = Number(values.concurrency);
const DEV = "bench1";

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${x.toFixed(2)} ms`;

const fleet = await Fleet.start();
const sims = [];
try {
  await fleet.startAgent(DEV, { heartbeat: "5s" });
  const hub = await fleet.hubConnection();
  const leaf = await fleet.leafConnection(DEV);
  const sender = await CommandSender.open(hub);

  // What `canopy cmd send --wait` does: a result feed opened before sending (KV updates of the
  // device's records and its result events as they cross the hub), then `waitForCommands` on each
  // command (the sent record, its current record, and the feed folded in). The feed is shared by the
  // waits here as by one CLI run's.
  const feed = await ResultFeed.open(sender.store, [DEV]);
  const sendAndWait = async () => {
    const rec = await sender.send({ device: DEV, name: "ping" });
    const { records, complete } = await waitForCommands(sender.store, [rec], 30_000, undefined, undefined, feed);
    const final = records[0];
    if (!complete || final?.state !== "succeeded") throw new Error(`ping ${rec.id} ended ${final?.state}: ${final?.error?.message}`);
    return final;
  };

  // Warm-up: the hub shard sources the device's UP a few seconds after the leaf connects.
  await waitFor(async () => (await Promise.race([sendAndWait().then(() => true), new Promise((r) => setTimeout(() => r(false), 5_000))])), {
    timeoutMs: 60_000,
    what: "a first ping round trip",
  });
  for (let i = 0; i < 20; i++) await sendAndWait();

  // 1. core request/reply baseline over the same link. The device's user may receive on its own inbox
  // prefix and answer only on `qr.<dev>.…` (per-device permissions), so the baseline uses exactly those.
  const reqSubject = `${Subjects.deviceInboxPrefix(DEV)}.bench`;
  const sub = leaf.subscribe(reqSubject, { callback: (_e, m) => m.reply && leaf.publish(m.reply, m.data) });
  await leaf.flush();
  const pending = new Map();
  let reqN = 0;
  const replies = hub.subscribe(`${Subjects.queryReplyPrefix}.${DEV}.bench.*`, {
    callback: (_e, m) => pending.get(m.subject)?.(),
  });
  await hub.flush();
  const request = (timeoutMs = 5_000) =>
    new Promise((resolve, reject) => {
      const reply = `${Subjects.queryReplyPrefix}.${DEV}.bench.${++reqN}`;
      const timer = setTimeout(() => (pending.delete(reply), reject(new Error("request timed out"))), timeoutMs);
      pending.set(reply, () => (clearTimeout(timer), pending.delete(reply), resolve()));
      hub.publish(reqSubject, "ping", { reply });
    });
  await waitFor(async () => request(1_000).then(() => true, () => false), { timeoutMs: 20_000, what: "core request/reply over the link" });
  for (let i = 0; i < 100; i++) await request();
  const rr = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await request();
    rr.push(performance.now() - t);
  }
  let t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next++ < RATE_N) await request(10_000);
    }),
  );
  const rrRate = RATE_N / ((performance.now() - t0) / 1000);
  sub.unsubscribe();
  replies.unsubscribe();

  // 2. command round trips, one at a time.
  const cmd = [];
  // Where a command's time goes: running → succeeded is on the agent's clock alone (handler, result
  // journalled); the rest is transit both ways (hub CMD → leaf mirror → agent → running mark fsync, and
  // UP → hub shard → gateway ingest → KV watch). Splitting the transit needs one clock: the agent's
  // times are hub time as it estimated it, which was measured off by hundreds of ms under load.
  const legs = { handler: [], transit: [] };
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    const f = await sendAndWait();
    cmd.push(performance.now() - t);
    if (f.times?.running && f.times?.succeeded) {
      legs.handler.push(f.times.succeeded - f.times.running);
      legs.transit.push(cmd[cmd.length - 1] - (f.times.succeeded - f.times.running));
    }
  }

  // 3. commands/s to one device.
  const wall0 = Date.now();
  t0 = performance.now();
  next = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next++ < RATE_N) await sendAndWait();
    }),
  );
  const cmdRate = RATE_N / ((performance.now() - t0) / 1000);
  feed.close();
  // The agent's own view (its "command finished" log lines): how fast the device executes, without the
  // result's trip back through UP, the hub shard and the gateway's KV index. The harness keeps the last
  // 2,000 lines of output, so this is the rate between the first and the last line it still has.
  const finished = fleet.agent(DEV).proc.output
    .filter((l) => l.includes('"command finished"'))
    .map((l) => JSON.parse(l).time)
    .filter((t) => t >= wall0);
  const span = finished.length > 1 ? Math.max(...finished) - Math.min(...finished) : 0;
  const agentRate = span > 0 ? (finished.length - 1) / (span / 1000) : NaN;

  const fan = FANOUT > 0 ? await fanOut(hub, sender) : undefined;

  const r = {
    n: N,
    concurrency: CONC,
    reqReply: { p50Ms: pct(rr, 50), p99Ms: pct(rr, 99), perSec: rrRate },
    commands: { p50Ms: pct(cmd, 50), p99Ms: pct(cmd, 99), perSec: cmdRate, agentPerSec: agentRate },
  };
  const ratio = { p50: r.commands.p50Ms / r.reqReply.p50Ms, p99: r.commands.p99Ms / r.reqReply.p99Ms, throughput: r.reqReply.perSec / r.commands.perSec };
  console.log(`\nbench/commands  n=${N}  rate-n=${RATE_N}  concurrency=${CONC}  (hub ↔ LinkProxy ↔ leaf of one agent, loopback)`);
  console.log(`                      p50          p99          per second`);
  console.log(`core request/reply    ${ms(r.reqReply.p50Ms).padEnd(12)} ${ms(r.reqReply.p99Ms).padEnd(12)} ${rrRate.toFixed(0)}`);
  console.log(`command round trip    ${ms(r.commands.p50Ms).padEnd(12)} ${ms(r.commands.p99Ms).padEnd(12)} ${cmdRate.toFixed(0)}`);
  console.log(`  (the agent itself finished ${agentRate.toFixed(0)} commands/s in step 3)`);
  const leg = (xs) => `${pct(xs, 50)?.toFixed(1)} / ${pct(xs, 99)?.toFixed(1)} ms`;
  console.log(`  legs (p50 / p99): on the agent, running → succeeded ${leg(legs.handler)}; transit both ways ${leg(legs.transit)}`);
  console.log(`ratio (command / req-reply): p50 ×${ratio.p50.toFixed(1)}, p99 ×${ratio.p99.toFixed(1)}; throughput: req-reply is ×${ratio.throughput.toFixed(1)} commands/s`);
  const fanFigures = fan
    ? [figure({ name: `one command to ${FANOUT} simulated devices, all terminal (vs a live query answered by the same devices)`, value: fan.p50Ms, unit: "ms", baseline: fan.queryMs, goal: 2000, goalOn: "value", better: "lower" })]
    : [];
  emit("commands", [
    figure({ name: "command round trip p50 (vs core req/reply)", value: r.commands.p50Ms, unit: "ms", baseline: r.reqReply.p50Ms, goal: 5, goalOn: "value", better: "lower" }),
    figure({ name: "command round trip p99 (vs core req/reply)", value: r.commands.p99Ms, unit: "ms", baseline: r.reqReply.p99Ms, better: "lower" }),
    figure({ name: "commands/s to one device (vs req/reply/s)", value: r.commands.perSec, unit: "cmd/s", baseline: r.reqReply.perSec, goal: 1000, goalOn: "value", better: "higher" }),
    ...fanFigures,
  ], { fanout: fan, n: N, rateN: RATE_N, concurrency: CONC, agentPerSec: agentRate, legsP50Ms: { handler: pct(legs.handler, 50), transit: pct(legs.transit, 50) } });
} finally {
  await Promise.allSettled(sims.map((p) => p.stop()));
  await fleet.stop();
}

/** Step 4: one ping to each of FANOUT simulated devices, until all are terminal; a few runs, median. */
async function fanOut(hub, sender) {
  const procs = Number(values["fanout-procs"]);
  const per = Math.ceil(FANOUT / procs);
  for (let p = 0; p < procs; p++) {
    const n = Math.min(per, FANOUT - p * per);
    sims.push(new CanopyProcess(["sim", "fleet", "--devices", String(n), "--first", String(p * per), "--server", fleet.hub.client,
      "--groups", "fan", "--heartbeat", "30s", "--commands", "--log-level", "warn"], fleet.env));
  }
  await Promise.all(sims.map((s) => s.waitForOutput(/"event":"sim-ready"/, 300_000)));
  const targets = await resolveTargets(hub, { group: "fan" });
  if (targets.length !== FANOUT) throw new Error(`${targets.length} devices in group fan, expected ${FANOUT}`);
  const once = async () => {
    const t = performance.now();
    const sent = [];
    let next = 0;
    await Promise.all(Array.from({ length: Number(values["fanout-inflight"]) }, async () => {
      while (next < targets.length) {
        const device = targets[next++];
        sent.push(await sender.send({ device, name: "ping", ttlMs: 60_000 }));
      }
    }));
    const sentMs = performance.now() - t;
    const { records, complete } = await waitForCommands(sender.store, sent, 60_000);
    const ms = performance.now() - t;
    const ok = records.filter((x) => x.state === "succeeded").length;
    if (!complete || ok !== FANOUT) throw new Error(`fan-out: ${ok}/${FANOUT} succeeded (complete ${complete})`);
    return { ms, sentMs };
  };
  await once(); // warm-up: the simulators' shards, the ingest's consumers
  const runs = [];
  for (let i = 0; i < Number(values["fanout-runs"]); i++) runs.push(await once());
  const q = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const res = await runQuery(hub, { expr: "true", timeoutMs: 20_000 });
    q.push(performance.now() - t);
    if (res.summary.answered < FANOUT) throw new Error(`query baseline: ${res.summary.answered} answered`);
  }
  const fan = { p50Ms: pct(runs.map((x) => x.ms), 50), sendMs: pct(runs.map((x) => x.sentMs), 50), queryMs: pct(q, 50), runs: runs.map((x) => Math.round(x.ms)) };
  console.log(`one ping to ${FANOUT} simulated devices → all terminal: p50 ${ms(fan.p50Ms)} (sending alone ${ms(fan.sendMs)}; runs ${fan.runs.join(", ")} ms); a live query to the same devices ${ms(fan.queryMs)}`);
  return fan;
}
