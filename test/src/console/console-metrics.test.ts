import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { stat, readFile } from "node:fs/promises";
import { join } from "node:path";
import parsePrometheus from "parse-prometheus-text-format";
import { waitFor } from "@canopy/protocol";
import { CanopyProcess, Fleet, json } from "../harness/index.js";
import { api, attachSimMcu, consoleUrl, freePort, mintToken } from "./helpers.js";

// Hub with console + one agent with its bridge, a sim MCU and the agent's /metrics port.
let fleet: Fleet;
let sim: CanopyProcess | undefined;
let base: string;
let token: string;
let agentMetrics: string;

interface Family {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; count?: string; sum?: string; buckets?: Record<string, string> }>;
}

async function scrape(url: string): Promise<Map<string, Family>> {
  const r = await fetch(url);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
  const families = parsePrometheus(await r.text()) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}

function value(m: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const f = m.get(name);
  assert.ok(f, `series ${name} present`);
  const s = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  assert.ok(s, `${name}${JSON.stringify(labels)} present`);
  return Number(s.value ?? s.count);
}

before(async () => {
  fleet = await Fleet.start({ hubArgs: ["--console-port", "0"] });
  base = consoleUrl(fleet);
  const mqttPort = await freePort();
  const agent = await fleet.startAgent("pi-m", { args: ["--bridge-mqtt", `127.0.0.1:${mqttPort}`, "--bridge-mqtt-anonymous", "--metrics-port", "0"] });
  const ready = JSON.parse(agent.proc.output.find((l) => l.includes('"agent-ready"')) ?? "{}") as { metrics?: string };
  assert.ok(ready.metrics, "agent-ready names the metrics URL");
  agentMetrics = ready.metrics;
  sim = await attachSimMcu(mqttPort, "m1", 20);
  token = await mintToken(fleet);
});

after(async () => {
  await sim?.stop();
  await fleet?.stop();
});

test("gateway /metrics parses as Prometheus text and has the fleet series with sane values", async () => {
  await waitFor(async () => (await fleet.cli(["tail", "--device", "pi-m", "--subject", "up.pi-m.tlm.mcu.m1.>"])).stdout.split("\n").length > 20, {
    timeoutMs: 60_000, intervalMs: 1_000, what: "MCU readings in the hub",
  });
  const sent = await fleet.cli(["cmd", "send", "--device", "pi-m", "ping", "--wait", "--json"]);
  assert.equal(sent.code, 0, sent.stderr);
  const q = await api(base, "/api/query", token, { method: "POST", body: JSON.stringify({ expr: "true" }) });
  const lines = (await q.text()).trim().split("\n").map((l) => JSON.parse(l) as { type: string });
  assert.deepEqual(lines.map((l) => l.type), ["answer", "done"]);

  const m = await waitFor(async () => {
    const s = await scrape(`${base}/metrics`);
    return s.get("canopy_commands_ended_total")?.metrics.length ? s : undefined;
  }, { timeoutMs: 20_000, intervalMs: 500, what: "command latency observed" });
  assert.equal(value(m, "canopy_devices", { state: "online" }), 1);
  assert.equal(value(m, "canopy_devices", { state: "offline" }), 0);
  const backlog = value(m, "canopy_device_backlog_messages", { device: "pi-m" });
  assert.ok(backlog >= 0 && backlog < 10_000, `backlog ${backlog}`);
  const shard = m.get("canopy_shard_ingested_messages_total");
  assert.equal(shard?.type, "COUNTER");
  const shardName = shard?.metrics[0]?.labels?.shard ?? "";
  assert.match(shardName, /^FLEET_UP_/);
  const first = value(m, "canopy_shard_ingested_messages_total", { shard: shardName });
  assert.ok(first > 20, `ingested ${first}`);
  assert.equal(value(m, "canopy_commands_ended_total", { state: "succeeded" }), 1);
  const cmd = m.get("canopy_command_duration_seconds")?.metrics[0];
  assert.equal(Number(cmd?.count), 1);
  assert.ok(Number(cmd?.sum) > 0 && Number(cmd?.sum) < 30, `command took ${cmd?.sum} s`);
  const query = m.get("canopy_query_duration_seconds")?.metrics[0];
  assert.equal(Number(query?.count), 1);
  for (const state of ["running", "finalizing", "completed", "halting", "halted"]) assert.equal(value(m, "canopy_rollouts", { state }), 0);

  // Ingest keeps counting: the MCU publishes 20/s.
  await waitFor(async () => value(await scrape(`${base}/metrics`), "canopy_shard_ingested_messages_total", { shard: shardName }) > first, {
    timeoutMs: 20_000, intervalMs: 500, what: "ingest counter grows",
  });
});

test("agent /metrics (loopback) has UP stream, bridge, MCU and publish-latency series", async () => {
  assert.match(agentMetrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const m = await waitFor(async () => {
    const s = await scrape(agentMetrics);
    const online = s.get("canopy_agent_mcus")?.metrics.some((x) => x.labels?.state === "online" && x.value === "1");
    // The UP gauge is sampled every 2 s by the agent's monitor: wait for a sample that has the readings.
    return online && value(s, "canopy_agent_up_stream_messages") > 20 ? s : undefined;
  }, { timeoutMs: 30_000, intervalMs: 500, what: "agent metrics with the MCU online and > 20 messages in UP" });
  assert.ok(value(m, "canopy_agent_up_stream_messages") > 20);
  assert.ok(value(m, "canopy_agent_up_stream_bytes") > 0);
  assert.ok(value(m, "canopy_agent_up_stored_messages_total") > 20);
  assert.equal(value(m, "canopy_agent_up_discarded_messages_total"), 0);
  assert.equal(value(m, "canopy_agent_mcus", { state: "offline" }), 0);
  assert.ok(value(m, "canopy_bridge_messages_total", { counter: "published" }) > 20);
  const pub = m.get("canopy_agent_publish_duration_seconds")?.metrics[0];
  assert.ok(Number(pub?.count) >= 1, "agent publishes observed");
  assert.ok(Number(pub?.sum) / Number(pub?.count) < 5, "mean publish latency under 5 s");
  assert.equal((await fetch(agentMetrics.replace("/metrics", "/other"))).status, 404);
});

test("the console never exposes secrets; tokens expire and can be revoked; the secret file is 0600", async () => {
  const set = await fleet.cli(["config", "set", "app.password", "hunter2", "--device", "pi-m"]);
  assert.equal(set.code, 0, set.stderr);
  await fleet.cli(["cmd", "send", "--device", "pi-m", "no-such-command", "--arg", "password=hunter2"]);
  const secretFile = join(fleet.dir.path, "hub", "console", "secret");
  assert.equal((await stat(secretFile)).mode & 0o777, 0o600);
  const secret = (await readFile(secretFile, "utf8")).trim();
  // The operator's NATS credentials (JWT and nkey seed) the gateway connects with.
  const creds = (await readFile(fleet.hub.creds, "utf8")).split("\n").filter((l) => /^(ey|SU)[A-Za-z0-9_.-]{20,}$/.test(l.trim())).map((l) => l.trim());
  assert.equal(creds.length, 2, "admin creds hold a JWT and a seed");
  const config = (await (await api(base, "/api/devices/pi-m/config", token)).json()) as { keys: Array<{ key: string; value: unknown }> };
  assert.equal(config.keys.find((k) => k.key === "app.password")?.value, "[redacted]");
  for (const path of ["/", "/app.js", "/api/fleet", "/api/session", "/api/devices/pi-m", "/api/devices/pi-m/config", "/api/devices/pi-m/commands", "/api/devices/pi-m/events", "/api/rollouts", "/metrics"]) {
    const text = await (await api(base, path, token)).text();
    for (const s of [secret, "hunter2", token, ...creds]) assert.ok(!text.includes(s), `${path} does not contain ${s === token ? "the token" : s === secret ? "the console secret" : creds.includes(s) ? "the operator creds" : s}`);
  }

  const minted = json<{ id: string; token: string; readOnly: boolean }>(await fleet.cli(["console", "token", "--json", "--read-only"]));
  assert.equal(minted.readOnly, true);
  assert.equal((await api(base, "/api/fleet", minted.token)).status, 200);
  const revoked = await fleet.cli(["console", "revoke", minted.id]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal((await api(base, "/api/fleet", minted.token)).status, 401, "revoked");
  assert.equal((await api(base, "/api/fleet", token)).status, 200, "other tokens still work");

  const short = json<{ token: string }>(await fleet.cli(["console", "token", "--json", "--ttl", "1s"]));
  await waitFor(async () => (await api(base, "/api/fleet", short.token)).status === 401, { timeoutMs: 5_000, intervalMs: 200, what: "expired token refused" });

  assert.equal((await fleet.cli(["console", "token", "--ttl", "soon"])).code, 2);
  assert.equal((await fleet.cli(["console", "revoke"])).code, 2);
  assert.equal((await fleet.cli(["console", "revoke", "bad.id"])).code, 2);
  const bad = await api(base, "/api/devices/pi-m/commands", token, { method: "POST", body: JSON.stringify({ name: "_reserved" }) });
  assert.equal(bad.status, 400);
  const wrongType = await fetch(`${base}/api/devices/pi-m/commands`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "text/plain" }, body: "{}" });
  assert.equal(wrongType.status, 400, "form posts (cross-site) are refused: JSON only");
});
