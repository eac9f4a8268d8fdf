#!/usr/bin/env node
// bench/config: latency from `config set --fleet` to every device's applied report, against the raw
// latency of one KV put seen by the same number of plain KV watchers, measured in the same run.
//
//   npx tsc -b && node bench/config.mjs [--devices 200] [--rounds 30]
//
// What runs: a real nats-server hub (JetStream), the gateway's own ConfigService (layer write +
// rendering into `cfg`, compare-and-set per device), and N lightweight simulated agents in this
// process, each with its own NATS connection, a KV watch on `cfg` filtered to its keys and the
// agent's real ConfigEngine (decode, schema validation, state, report). Not included: the leaf
// server, its filtered mirror, LMDB fsync and UP sourcing (state is in memory, reports are core
// publishes); the bench isolates the hub-side pipeline plus the agent's apply logic.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { pino } from "pino";
import { TestServer } from "@canopy/test/harness/servers";
import { provisionHub } from "@canopy/gateway/hub/provision";
import { ConfigService } from "@canopy/gateway/config/operations";
import { ConfigEngine } from "@canopy/agent/config/engine";
import { MemoryConfigStore } from "@canopy/agent/config/store";
import { emit, figure, percentile as pct } from "./lib/report.mjs";

const { values: args } = parseArgs({ options: { devices: { type: "string", default: "200" }, rounds: { type: "string", default: "30" } } });
const N = Number(args.devices);
const ROUNDS = Number(args.rounds);
const WARMUP = 3;
const KEY = "app.bench";
const silent = pino({ level: "silent" });

const dir = await mkdtemp(join(tmpdir(), "canopy-bench-config-"));
const hub = await TestServer.hub(join(dir, "hub"));
const admin = await hub.connect();
const conns = [];
try {
  await provisionHub(admin);
  const devicesKv = await new Kvm(admin).open("devices");
  const ids = Array.from({ length: N }, (_, i) => `sim${String(i).padStart(4, "0")}`);
  await Promise.all(ids.map((id) => devicesKv.put(id, JSON.stringify({ id, groups: ["bench"], created: Date.now() }))));
  const raw = await new Kvm(admin).create("bench-raw", { history: 1 });

  // Simulated agents and plain watchers share the same N connections.
  let onApplied = () => {};
  let onRaw = () => {};
  for (const id of ids) {
    const nc = await hub.connect({ name: id });
    conns.push(nc);
    const cfg = await new Kvm(nc).open("cfg");
    const engine = new ConfigEngine({
      store: new MemoryConfigStore(),
      applyLive: async () => {},
      deliver: async () => {},
      report: (event) => nc.publish(`up.${id}.evt.config`, JSON.stringify(event)),
      changed: () => {},
      log: silent,
    });
    void (async () => {
      for await (const e of await cfg.watch({ key: `${id}.>` })) {
        await engine.handle({ key: e.key.slice(id.length + 1), revision: e.revision, operation: e.operation, data: e.value });
      }
    })();
    const rawKv = await new Kvm(nc).open("bench-raw");
    void (async () => {
      for await (const e of await rawKv.watch({ key: "x", include: "updates" })) if (e.operation === "PUT") onRaw(id);
    })();
  }
  const reports = admin.subscribe("up.*.evt.config", {
    callback: (_err, m) => {
      const ev = m.json();
      if (ev.key === KEY && ev.status === "applied") onApplied(m.subject.split(".")[1]);
    },
  });
  await admin.flush();

  const svc = await ConfigService.open(admin);
  const cfgAll = [];
  const cfgEach = [];
  const rawAll = [];
  const rawEach = [];
  const round = (start, hook, each) =>
    new Promise((resolve) => {
      const seen = new Set();
      hook((id) => {
        if (seen.has(id)) return;
        seen.add(id);
        each.push(performance.now() - start);
        if (seen.size === N) resolve(performance.now() - start);
      });
    });

  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const measure = i >= WARMUP;
    let t0 = performance.now();
    const eachC = [];
    const doneC = round(t0, (f) => (onApplied = f), eachC);
    await svc.set({ kind: "fleet" }, KEY, i);
    const c = await doneC;
    t0 = performance.now();
    const eachR = [];
    const doneR = round(t0, (f) => (onRaw = f), eachR);
    await raw.put("x", String(i));
    const r = await doneR;
    if (measure) {
      cfgAll.push(c);
      rawAll.push(r);
      cfgEach.push(...eachC);
      rawEach.push(...eachR);
    }
  }
  reports.unsubscribe();

  const row = (name, c, r) => {
    const [c50, c99, r50, r99] = [pct(c, 50), pct(c, 99), pct(r, 50), pct(r, 99)];
    console.log(`${name.padEnd(34)} config p50 ${c50.toFixed(1)} ms  p99 ${c99.toFixed(1)} ms | raw KV p50 ${r50.toFixed(1)} ms  p99 ${r99.toFixed(1)} ms | ratio p50 ${(c50 / r50).toFixed(1)}x  p99 ${(c99 / r99).toFixed(1)}x`);
  };
  console.log(`bench/config: ${N} simulated devices, ${ROUNDS} rounds (+${WARMUP} warm-up), nats-server hub on 127.0.0.1`);
  row("all devices applied (per round)", cfgAll, rawAll);
  row("each device applied (per report)", cfgEach, rawEach);
  emit("config", [
    figure({ name: `config set → applied p99, ${N} devices (vs raw KV put watched)`, value: pct(cfgEach, 99), unit: "ms", baseline: pct(rawEach, 99), goal: 1.5, better: "lower" }),
    figure({ name: `config set → applied p50, ${N} devices (vs raw KV put watched)`, value: pct(cfgEach, 50), unit: "ms", baseline: pct(rawEach, 50), better: "lower" }),
  ], { devices: N, rounds: ROUNDS });
} finally {
  await Promise.allSettled(conns.map((c) => c.close()));
  await admin.close();
  await hub.stop();
  await rm(dir, { recursive: true, force: true });
}
