#!/usr/bin/env node
// bench/scale (issue 15, fleet scale: "10,000 simulated devices against one hub"). Run after `npx tsc -b`:
//   node bench/scale.mjs [--devices 10000] [--procs 8] [--per-connection 2] [--runs 5]
// Starts a real hub (`canopy hub start`: nats-server + gateway, operator mode) and N simulated agents
// (`canopy sim fleet --commands`, compact presence, `--per-connection` devices to a NATS connection),
// then measures, with the hub nats-server's RSS and CPU sampled from /varz every 250 ms:
//   query    full-fleet live query (runQuery, `true`), p50 of `--runs`; baseline: the same request on
//            `q.all` with a bare count of the N answers on `qr.*.<id>` (the fan-out without the collector)
//   config   `config set` of a fleet-wide key → rendered for every device in KV `cfg` (the hub's part
//            of a rollout: simulated devices have no config mirror and apply nothing)
//   command  one ping to every device → all terminal in KV `commands` (sent 256 in flight, as the CLI)
import { parseArgs } from "node:util";
import { Fleet, CanopyProcess } from "@canopy/test/harness/index";
import { Kvm } from "@nats-io/kv";
import { runQuery } from "@canopy/gateway/query/index";
import { ConfigService } from "@canopy/gateway/config/operations";
import { CommandSender, resolveTargets, waitForCommands } from "@canopy/gateway/commands/index";
import { Subjects, waitFor } from "@canopy/protocol";
import { emit, figure, percentile as pct } from "./lib/report.mjs";
import { sampler, varz } from "./lib/hub.mjs";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "10000" },
    procs: { type: "string", default: "8" },
    "per-connection": { type: "string", default: "2" },
    runs: { type: "string", default: "5" },
  },
});
const N = Number(values.devices);
const PROCS = Number(values.procs);
const RUNS = Number(values.runs);
const mib = (b) => b / 2 ** 20;

const fleet = await Fleet.start();
const sims = [];
const s = sampler(fleet.hub.http);
const figures = [];
const extra = { devices: N, procs: PROCS, perConnection: Number(values["per-connection"]) };
try {
  const per = Math.ceil(N / PROCS);
  const t0 = Date.now();
  for (let p = 0; p < PROCS; p++) {
    const n = Math.min(per, N - p * per);
    sims.push(new CanopyProcess(["sim", "fleet", "--devices", String(n), "--first", String(p * per), "--server", fleet.hub.client,
      "--per-connection", values["per-connection"], "--heartbeat", "15s", "--groups", "scale", "--commands", "--log-level", "warn"], fleet.env));
  }
  await Promise.all(sims.map((x) => x.waitForOutput(/"event":"sim-ready"/, 600_000)));
  extra.upMs = Date.now() - t0;
  const nc = await fleet.hubConnection();
  extra.upPeak = { rssMiB: Math.round(mib(s.peak.mem)), cpu: Math.round(s.peak.cpu) };
  console.log(`scale: ${N} simulated devices in ${PROCS} processes up in ${extra.upMs} ms; hub peak so far RSS ${extra.upPeak.rssMiB} MiB, CPU ${extra.upPeak.cpu} %`);
  s.reset();

  // 1. full-fleet query vs a bare requestMany of the same fan-out.
  await waitFor(async () => (await runQuery(nc, { expr: "true", timeoutMs: 20_000 })).summary.answered >= N, { timeoutMs: 180_000, intervalMs: 2_000, what: `${N} answering` });
  const q = [];
  const base = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const r = await runQuery(nc, { expr: "true", timeoutMs: 20_000 });
    q.push(performance.now() - t);
    if (r.summary.answered < N) console.log(`query run ${i}: ${r.summary.answered}/${N} answered`);
    // Baseline: the same request on q.all and a bare count of the answers on qr.*.<id> (no targets,
    // no presence, no parsing): the fan-out itself.
    const id = `bare${i}`;
    let got = 0;
    let all;
    const answered = new Promise((r) => (all = r));
    const sub = nc.subscribe(Subjects.queryReplies(id), { callback: () => ++got >= N && all() });
    await nc.flush();
    t = performance.now();
    nc.publish(Subjects.queryAll, JSON.stringify({ id, expr: "true" }));
    await Promise.race([answered, new Promise((r) => setTimeout(r, 20_000))]);
    base.push(performance.now() - t);
    sub.unsubscribe();
    if (got < N) console.log(`bare fan-out run ${i}: ${got}/${N}`);
  }
  console.log(`query p50 ${pct(q, 50).toFixed(0)} ms vs bare fan-out ${pct(base, 50).toFixed(0)} ms; hub peak RSS ${mib(s.peak.mem).toFixed(0)} MiB, CPU ${s.peak.cpu.toFixed(0)} %`);
  figures.push(figure({ name: `full-fleet query p50, ${N} simulated devices (vs a bare count of the same answers)`, value: pct(q, 50), unit: "ms", baseline: pct(base, 50), goal: 1000, goalOn: "value", better: "lower" }));
  extra.query = { peakRssMiB: Math.round(mib(s.peak.mem)), peakCpu: Math.round(s.peak.cpu), runsMs: q.map(Math.round), bareMs: base.map(Math.round) };
  s.reset();

  // 2. a fleet-wide config value rendered for every device.
  const cfg = await new Kvm(nc).open("cfg");
  const value = `v${Date.now()}`;
  const seen = new Set();
  const watch = await cfg.watch({ key: "*.app.scale", include: "updates_only" });
  const done = (async () => {
    for await (const e of watch) {
      if (e.operation === "PUT" && e.string().includes(value)) seen.add(e.key);
      if (seen.size >= N) break;
    }
  })();
  const tc = performance.now();
  await (await ConfigService.open(nc)).set({ kind: "fleet" }, "app.scale", value);
  await Promise.race([done, new Promise((r) => setTimeout(r, 120_000))]);
  watch.stop();
  const cfgMs = performance.now() - tc;
  console.log(`config set (fleet) → rendered for ${seen.size}/${N} devices in ${cfgMs.toFixed(0)} ms; hub peak RSS ${mib(s.peak.mem).toFixed(0)} MiB, CPU ${s.peak.cpu.toFixed(0)} %`);
  figures.push(figure({ name: `config set → rendered for all ${N} devices in KV cfg (simulated devices apply nothing)`, value: seen.size >= N ? cfgMs : Infinity, unit: "ms", goal: 10_000, goalOn: "value", better: "lower" }));
  extra.config = { rendered: seen.size, peakRssMiB: Math.round(mib(s.peak.mem)), peakCpu: Math.round(s.peak.cpu) };
  s.reset();

  // 3. one ping to every device → all terminal.
  const sender = await CommandSender.open(nc);
  const targets = await resolveTargets(nc, { group: "scale" });
  const tk = performance.now();
  const sent = [];
  let next = 0;
  await Promise.all(Array.from({ length: 256 }, async () => {
    while (next < targets.length) sent.push(await sender.send({ device: targets[next++], name: "ping", ttlMs: 300_000 }));
  }));
  const sendMs = performance.now() - tk;
  const { records, complete } = await waitForCommands(sender.store, sent, 180_000);
  const cmdMs = performance.now() - tk;
  const ok = records.filter((r) => r.state === "succeeded").length;
  console.log(`ping to ${targets.length} devices: ${ok} succeeded, all terminal ${complete} in ${cmdMs.toFixed(0)} ms (sending ${sendMs.toFixed(0)} ms); hub peak RSS ${mib(s.peak.mem).toFixed(0)} MiB, CPU ${s.peak.cpu.toFixed(0)} %`);
  figures.push(figure({ name: `one command to ${N} simulated devices, all terminal`, value: complete ? cmdMs : Infinity, unit: "ms", better: "lower" }));
  extra.command = { succeeded: ok, complete, sendMs: Math.round(sendMs), peakRssMiB: Math.round(mib(s.peak.mem)), peakCpu: Math.round(s.peak.cpu) };
  const v = await varz(fleet.hub.http);
  figures.push(figure({ name: `hub nats-server RSS after the runs, ${N} devices`, value: Math.round(mib(v.mem)), unit: "MiB", better: "lower" }));
  figures.push(figure({ name: `hub nats-server peak CPU during the runs, ${N} devices`, value: Math.max(extra.query.peakCpu, extra.config.peakCpu, extra.command.peakCpu), unit: "%", better: "lower" }));
} finally {
  await s.stop();
  emit("scale", figures, extra);
  await Promise.allSettled(sims.map((p) => p.stop()));
  await fleet.stop();
}
