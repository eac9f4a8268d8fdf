#!/usr/bin/env node
// Live-query benchmark (issue 7). Run after `npx tsc -b`:
//   node bench/query.mjs [--devices 5000] [--procs 4] [--runs 20] [--timeout-ms 10000]
// Starts a real hub (`canopy hub start`), N simulated agents across several `canopy sim fleet`
// processes, and — as the baseline, in the same run — N bare core-NATS responders across as many
// processes (a connection each, like the simulated agents). Then, interleaved, measures:
//   full      canopy collector (runQuery), expression `true`: all N devices answer
//   selective canopy collector, `cpu.load < 10.0`: ~10 % match, the rest answer bare
//   baseline  nc.requestMany(count = N) to the bare responders
// and prints p50/p99 per series and the ratio to the baseline. With 20 runs, p99 is the maximum.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";
import { fastCredsAuthenticator } from "@canopy/protocol/nats/creds";
import { Fleet, CanopyProcess } from "@canopy/test/harness/index";
import { runQuery } from "@canopy/gateway/query/index";
import { cpuMsOf, emit, figure, percentile } from "./lib/report.mjs";

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};

if (flag("role") === "responders") await responders();
else await main();

/** Child role: `count` bare responders, `--per-connection` to a NATS connection (1), replying with a small fixed payload. */
async function responders() {
  const count = Number(flag("count"));
  const first = Number(flag("first", "0"));
  const server = flag("server");
  const per = Number(flag("per-connection", "1"));
  // The hub runs with credentials (operator mode): the bare responders use the operator's, from the env.
  const auth = process.env.CANOPY_CREDS ? fastCredsAuthenticator(await readFile(process.env.CANOPY_CREDS)) : undefined;
  const conns = [];
  const connections = Math.ceil(count / per);
  for (let i = 0; i < connections; i += 32) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(32, connections - i) }, (_, j) =>
        connectRetrying({ servers: server, name: `bare-${first + (i + j) * per}`, timeout: 30_000, ...(auth ? { authenticator: auth } : {}) }),
      ),
    );
    batch.forEach((nc, j) => {
      for (let k = (i + j) * per; k < Math.min(count, (i + j + 1) * per); k++) {
        const reply = JSON.stringify({ id: "bench", device: `bare-${first + k}`, matched: true, values: { "os.platform": "linux" } });
        nc.subscribe("bench.bare", { callback: (_e, m) => m.respond(reply) });
      }
      conns.push(nc);
    });
  }
  await Promise.all(conns.map((nc) => nc.flush()));
  process.stdout.write(JSON.stringify({ event: "responders-ready", count }) + "\n");
  await new Promise((resolve) => process.once("SIGTERM", resolve));
  await Promise.allSettled(conns.map((nc) => nc.close()));
  process.exit(0);
}

/** Thousands of connections at once on a loaded machine: a handshake may time out; try again. */
async function connectRetrying(opts, attempts = 5) {
  for (let i = 1; ; i++) {
    try {
      return await connect(opts);
    } catch (err) {
      if (i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 500 * i + Math.random() * 500));
    }
  }
}

function waitLine(child, re, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}`)), timeoutMs);
    child.stdout.on("data", (d) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`responder process exited (${code})`)));
  });
}

/** Each fleet size in turn (`--devices 5000,10000`, the default), a fresh hub each; one JSON line for all. */
async function main() {
  const sizes = String(flag("devices", process.env.CANOPY_BENCH_DEVICES ?? "5000,10000")).split(",").map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--devices: a comma-separated list of positive integers");
  const figures = [];
  const runsBySize = {};
  for (const devices of sizes) {
    // A size the machine cannot host (connections, load) must not lose the sizes measured before it.
    try {
      const r = await measureSize(devices);
      figures.push(...r.figures);
      runsBySize[devices] = r.extra;
    } catch (err) {
      console.log(`query bench at ${devices} devices failed: ${err instanceof Error ? err.message : String(err)}`);
      runsBySize[devices] = { error: err instanceof Error ? err.message : String(err) };
    }
  }
  if (figures.length === 0) process.exitCode = 1;
  emit("query", figures, { sizes: runsBySize });
}

/** CPU time (user + system, ms) these processes have used; processes that are gone count 0. */
async function cpuMsOfAll(pids) {
  const each = await Promise.all(pids.map((pid) => cpuMsOf(pid).catch(() => 0)));
  return each.reduce((x, y) => x + y, 0);
}

async function measureSize(devices) {
  const procs = Number(flag("procs", String(Math.max(4, Math.ceil(devices / 1250)))));
  const runs = Number(flag("runs", "20"));
  const timeoutMs = Number(flag("timeout-ms", "10000"));
  const per = Math.ceil(devices / procs);
  // Simulated and bare devices share connections two to one above 6,000 devices, alike on both sides:
  // 10,000 + 10,000 connections would pass this machine's open-file limit (20,000) in the hub.
  const perConnection = Number(flag("per-connection", devices > 6_000 ? "2" : "1"));
  console.log(`query bench: ${devices} simulated devices in ${procs} processes (${perConnection} per connection), ${runs} runs, timeout ${timeoutMs} ms`);

  const fleet = await Fleet.start();
  const sims = [];
  const bare = [];
  try {
    let t0 = Date.now();
    for (let p = 0; p < procs; p++) {
      const n = Math.min(per, devices - p * per);
      sims.push(new CanopyProcess(["sim", "fleet", "--devices", String(n), "--first", String(p * per), "--server", fleet.hub.client, "--heartbeat", "60s", "--per-connection", String(perConnection), "--log-level", "warn"], fleet.env));
      const child = spawn(process.execPath, [new URL(import.meta.url).pathname, "--role", "responders", "--count", String(n), "--first", String(p * per), "--per-connection", String(perConnection), "--server", fleet.hub.client], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...fleet.env } });
      bare.push({ child, ready: waitLine(child, /responders-ready/, 180_000) });
    }
    await Promise.all([...sims.map((s) => s.waitForOutput(/"event":"sim-ready"/, 300_000)), ...bare.map((b) => b.ready)]);
    console.log(`fleet up in ${Date.now() - t0} ms (${devices} simulated agents + ${devices} bare responders)`);

    const nc = await fleet.hubConnection();
    const series = { full: [], selective: [], baseline: [] };
    const counts = { full: [], selective: [], baseline: [] };
    const measure = {
      full: async () => {
        const r = await runQuery(nc, { expr: "true", timeoutMs, fields: ["os.platform"] });
        return { ms: r.summary.elapsedMs, n: r.summary.matched, ok: r.summary.answered === devices && !r.summary.timedOut };
      },
      selective: async () => {
        const r = await runQuery(nc, { expr: "cpu.load < 10.0", timeoutMs, fields: ["os.platform"] });
        return { ms: r.summary.elapsedMs, n: r.summary.matched, ok: r.summary.answered === devices && !r.summary.timedOut };
      },
      baseline: async () => {
        const start = performance.now();
        let n = 0;
        for await (const _m of await nc.requestMany("bench.bare", "{}", { strategy: "count", maxMessages: devices, maxWait: timeoutMs })) n++;
        return { ms: Math.round(performance.now() - start), n, ok: n === devices };
      },
    };
    const order = ["baseline", "full", "selective"];
    // Where a query's CPU goes: the answering side (the simulated agents' processes for canopy, the bare
    // responders' for the baseline) and this process (the collector), per query.
    const answering = { full: sims.map((x) => x.pid), selective: sims.map((x) => x.pid), baseline: bare.map((b) => b.child.pid) };
    const cpu = { full: { answering: [], collector: [] }, selective: { answering: [], collector: [] }, baseline: { answering: [], collector: [] } };
    for (let i = -2; i < runs; i++) {
      for (const k of i % 2 === 0 ? order : [...order].reverse()) {
        const a0 = await cpuMsOfAll(answering[k]);
        const c0 = process.cpuUsage();
        const r = await measure[k]();
        const c1 = process.cpuUsage(c0);
        if (!r.ok) console.log(`  run ${i} ${k}: incomplete (${r.n} answers in ${r.ms} ms)`);
        if (i >= 0) {
          series[k].push(r.ms);
          counts[k].push(r.n);
          cpu[k].answering.push((await cpuMsOfAll(answering[k])) - a0);
          cpu[k].collector.push((c1.user + c1.system) / 1000);
        }
      }
    }
    const base50 = percentile(series.baseline, 50);
    const base99 = percentile(series.baseline, 99);
    console.log("\nseries      p50 ms  p99 ms  min ms  matched  ratio p50  ratio p99");
    for (const k of ["full", "selective", "baseline"]) {
      const p50 = percentile(series[k], 50);
      const p99 = percentile(series[k], 99);
      const matched = percentile(counts[k], 50);
      console.log(
        `${k.padEnd(10)}  ${String(p50).padStart(6)}  ${String(p99).padStart(6)}  ${String(Math.min(...series[k])).padStart(6)}  ${String(matched).padStart(7)}  ${(p50 / base50).toFixed(2).padStart(9)}  ${(p99 / base99).toFixed(2).padStart(9)}`,
      );
    }
    for (const k of ["full", "selective", "baseline"]) {
      console.log(`CPU per query, ${k.padEnd(9)}: answering processes p50 ${percentile(cpu[k].answering, 50)} ms, collector p50 ${Math.round(percentile(cpu[k].collector, 50))} ms`);
    }
    console.log(`\ntarget: full-fleet p50 < 500 ms → ${percentile(series.full, 50) < 500 ? "met" : "NOT met"}`);

    t0 = Date.now();
    const cli = await fleet.cli(["query", "--timeout", `${timeoutMs}ms`, "--json", "--fields", "os.platform"], 60_000);
    const summary = JSON.parse(cli.stdout).summary;
    const cliMs = Date.now() - t0;
    console.log(`one 'canopy query' CLI run (process start + connect + query): ${cliMs} ms wall, collector ${summary.elapsedMs} ms, ${summary.answered} answered`);
    const full50 = percentile(series.full, 50);
    return { figures: [
      figure({ name: `full-fleet query p50, ${devices} devices`, value: full50, unit: "ms", goal: devices >= 10_000 ? 1000 : 500, better: "lower" }),
      figure({ name: `full-fleet query p50 vs requestMany, ${devices} devices`, value: full50, unit: "ms", baseline: base50, goal: 1.3, better: "lower" }),
      figure({ name: `10%-selective query p50 vs requestMany, ${devices} devices`, value: percentile(series.selective, 50), unit: "ms", baseline: base50, better: "lower" }),
      figure({ name: `one \`canopy query\` CLI run, wall, ${devices} devices`, value: cliMs, unit: "ms", better: "lower" }),
    ], extra: { procs, runs, perConnection, cpuP50Ms: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, { answering: percentile(v.answering, 50), collector: Math.round(percentile(v.collector, 50)) }])) } };
  } finally {
    for (const b of bare) b.child.kill("SIGTERM");
    await Promise.allSettled(sims.map((s) => s.stop()));
    await fleet.stop();
  }
}
