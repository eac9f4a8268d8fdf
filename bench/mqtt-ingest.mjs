#!/usr/bin/env node
// QoS 1 ingest from 50 MQTT clients into durable storage, three servers measured in one run:
//   (a) Canopy's firmware bridge → the leaf's JetStream UP stream (PUBACK after the stream's ack)
//   (b) mosquitto with persistence on (messages queued for a persistent QoS 1 session, saved to disk)
//   (c) nats-server's own MQTT listener (QoS 1 into JetStream, queued for a persistent session)
// plus the bridge's CPU time per 1,000 serial frames at 921,600-baud-equivalent load (binary
// protocol over a socat pty, every frame stored in UP and link-acked).
// Run after `npx tsc -b`: node bench/mqtt-ingest.mjs   (CANOPY_BENCH_MSGS=per-client count)
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsServerProcess, waitFor } from "@canopy/protocol";
import { renderLeafConfig } from "@canopy/protocol";
import { CanopyProcess, freePort, tempDir } from "@canopy/test/harness/index";
import { ensureUpStream, DEFAULT_UP_LIMITS } from "@canopy/agent/up/stream";
import { emit, figure } from "./lib/report.mjs";
import { startCanopy } from "./lib/profile.mjs";

const CLIENTS = 50;
const PER_CLIENT = Number(process.env.CANOPY_BENCH_MSGS ?? 2000);
const WINDOW = 20; // QoS 1 publishes in flight per client
const PAYLOAD = Buffer.from(JSON.stringify({ t: 21.5, rh: 40.1, ts: 1700000000000 }));
const SERIAL_FRAMES = 20_000;
const FRAME_BYTES = 23; // a typical telemetry frame on the wire (header, metric, value, CRC, COBS, delimiter)
const BAUD = 921_600;

const dir = await tempDir("canopy-bench-");
const cleanups = [];
const cleanup = async () => {
  for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {});
  await dir.remove();
};
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));

function log(...a) {
  process.stderr.write(`${a.join(" ")}\n`);
}

async function waitPort(port) {
  const { connect: tcp } = await import("node:net");
  await waitFor(
    () => new Promise((resolve) => {
      const s = tcp(port, "127.0.0.1");
      s.on("connect", () => { s.destroy(); resolve(true); });
      s.on("error", () => resolve(false));
    }),
    { timeoutMs: 15_000, what: `port ${port}` },
  );
}

/** A persistent QoS 1 session that subscribes and leaves, so the broker must keep every message. */
async function parkSubscriber(port, topic) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "bench-store", clean: false, reconnectPeriod: 0 });
  await c.subscribeAsync(topic, { qos: 1 });
  await c.endAsync();
}

/** 50 clients, each PER_CLIENT QoS 1 publishes with WINDOW in flight. Returns msgs/s over all PUBACKs. */
async function load(port, topicOf) {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `bench-${i}`, reconnectPeriod: 0, clean: true })),
  );
  const started = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (c, i) => {
      let next = 0;
      const lane = async () => {
        while (next < PER_CLIENT) {
          next++;
          await c.publishAsync(topicOf(i), PAYLOAD, { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
    }),
  );
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(clients.map((c) => c.endAsync()));
  return (CLIENTS * PER_CLIENT) / secs;
}

function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime in clock ticks (100 Hz)
}

async function natsServer(name, conf) {
  const file = join(dir.path, `${name}.conf`);
  writeFileSync(file, conf);
  const s = new NatsServerProcess({ configFile: file });
  cleanups.push(() => s.stop());
  await s.start();
  return s;
}

try {
  // (a) Canopy bridge → leaf UP
  const leafPort = await freePort();
  // The device's own leaf config (renderLeafConfig), so the bench runs at the production durability
  // default; its hub remote points at a closed port (no hub in this bench).
  const leafServer = await natsServer("leaf", renderLeafConfig({ device: "d1", storeDir: join(dir.path, "leaf"), port: leafPort, hubUrls: [`nats-leaf://127.0.0.1:${await freePort()}`], maxFileStore: 4 * 2 ** 30 }));
  const nc = await connect({ servers: `nats://127.0.0.1:${leafPort}` });
  cleanups.push(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await ensureUpStream(jsm, "d1", { ...DEFAULT_UP_LIMITS, maxBytes: 2 ** 30 }); // the agent's own UP stream
  const bridgePort = await freePort();
  const pty = { a: join(dir.path, "tty-bridge"), b: join(dir.path, "tty-mcu") };
  const socat = spawn("socat", [`pty,raw,echo=0,link=${pty.a}`, `pty,raw,echo=0,link=${pty.b}`], { stdio: "ignore" });
  cleanups.push(() => socat.kill("SIGKILL"));
  await waitFor(() => existsSync(pty.a) && existsSync(pty.b), { timeoutMs: 5_000, what: "ptys" });
  const bridge = startCanopy(["bridge", "--device", "d1", "--leaf", `nats://127.0.0.1:${leafPort}`, "--mqtt", `127.0.0.1:${bridgePort}`, "--mqtt-anonymous", "--serial", `${pty.a}:${BAUD}`, "--data", join(dir.path, "bridge"), "--log-level", "warn"]);
  cleanups.push(() => bridge.stop());
  await waitPort(bridgePort);
  log("(a) canopy bridge …");
  const cpu0 = { bridge: cpuMs(bridge.pid), leaf: cpuMs(leafServer.pid) };
  const a = await load(bridgePort, (i) => `bench-${i}/tlm/env`);
  // Where the CPU went during (a): the bridge (node) and the leaf (nats-server), per 1,000 messages.
  const perK = (ms) => ms / ((CLIENTS * PER_CLIENT) / 1000);
  const cpuA = { bridge: perK(cpuMs(bridge.pid) - cpu0.bridge), leaf: perK(cpuMs(leafServer.pid) - cpu0.leaf) };
  const stored = (await jsm.streams.info("UP", { subjects_filter: "up.d1.tlm.>" })).state.subjects;
  const inUp = Object.values(stored ?? {}).reduce((x, y) => x + y, 0);
  if (inUp !== CLIENTS * PER_CLIENT) throw new Error(`bridge stored ${inUp}, expected ${CLIENTS * PER_CLIENT}`);

  // Serial: the sim at the frame rate 921,600 baud carries; CPU of the bridge process only.
  const rate = Math.floor(BAUD / 10 / FRAME_BYTES);
  const before = cpuMs(bridge.pid);
  const t0 = Date.now();
  const sim = new CanopyProcess(["sim", "mcu", "--id", "bench-serial", "--serial", `${pty.b}:${BAUD}`, "--binary", "--rate", String(rate), "--count", String(SERIAL_FRAMES), "--window", "128"]);
  cleanups.push(() => sim.stop());
  log(`serial: ${SERIAL_FRAMES} frames at ${rate} frames/s …`);
  const code = await sim.exited;
  if (code !== 0) throw new Error(`serial sim exited ${code}: ${sim.output.slice(-5).join("\n")}`);
  const serialSecs = (Date.now() - t0) / 1000;
  const cpuPer1000 = (cpuMs(bridge.pid) - before) / (SERIAL_FRAMES / 1000);
  await bridge.stop();

  // (b) mosquitto with persistence
  const mqPort = await freePort();
  mkdirSync(join(dir.path, "mosq"), { recursive: true });
  writeFileSync(join(dir.path, "mosquitto.conf"), [
    `listener ${mqPort} 127.0.0.1`, "allow_anonymous true", "persistence true",
    `persistence_location ${join(dir.path, "mosq")}/`, "autosave_interval 1", "max_queued_messages 0", "max_inflight_messages 0", "log_dest none", "",
  ].join("\n"));
  const mosq = spawn("/usr/sbin/mosquitto", ["-c", join(dir.path, "mosquitto.conf")], { stdio: "ignore" });
  cleanups.push(() => mosq.kill("SIGTERM"));
  await waitPort(mqPort);
  await parkSubscriber(mqPort, "bench/#");
  log("(b) mosquitto …");
  const b = await load(mqPort, (i) => `bench/${i}/env`);

  // (c) nats-server MQTT (JetStream-backed)
  const nsMqtt = await freePort();
  await natsServer("mqtt", `server_name: mq\nlisten: "127.0.0.1:${await freePort()}"\njetstream { store_dir: "${dir.path}/natsmqtt" }\nmqtt { listen: "127.0.0.1:${nsMqtt}" }\n`);
  await waitPort(nsMqtt);
  await parkSubscriber(nsMqtt, "bench/#");
  log("(c) nats-server mqtt …");
  const c = await load(nsMqtt, (i) => `bench/${i}/env`);

  const f = (n) => n.toFixed(0).padStart(8);
  console.log(`MQTT QoS1 ingest, ${CLIENTS} clients × ${PER_CLIENT} msgs (${WINDOW} in flight each), ${PAYLOAD.length}-byte payload`);
  console.log(`  (a) canopy bridge → leaf UP stream : ${f(a)} msgs/s`);
  console.log(`  (b) mosquitto, persistence on      : ${f(b)} msgs/s`);
  console.log(`  (c) nats-server MQTT (JetStream)   : ${f(c)} msgs/s`);
  console.log(`  a/b = ${(a / b).toFixed(2)}   a/c = ${(a / c).toFixed(2)}`);
  console.log(`  CPU during (a) per 1,000 messages: bridge ${cpuA.bridge.toFixed(1)} ms, leaf nats-server ${cpuA.leaf.toFixed(1)} ms`);
  console.log(`Serial: ${SERIAL_FRAMES} binary frames offered at ${rate} frames/s (921,600 baud, ${FRAME_BYTES} B/frame); all stored and acked in ${serialSecs.toFixed(1)} s (${(SERIAL_FRAMES / serialSecs).toFixed(0)} frames/s achieved)`);
  console.log(`  bridge CPU: ${cpuPer1000.toFixed(1)} ms per 1,000 frames (${((cpuPer1000 * rate) / 1000 / 10).toFixed(1)} % of one core at that rate)`);
  emit("mqtt-ingest", [
    figure({ name: "MQTT QoS1 ingest vs mosquitto (persistence on)", value: a, unit: "msg/s", baseline: b, goal: 1.0, better: "higher" }),
    figure({ name: "MQTT QoS1 ingest vs nats-server MQTT", value: a, unit: "msg/s", baseline: c, goal: 1.0, better: "higher" }),
    figure({ name: "serial binary frames: bridge CPU per 1,000", value: cpuPer1000, unit: "ms", goal: 60, better: "lower" }),
  ], { clients: CLIENTS, perClient: PER_CLIENT, window: WINDOW, serialFrames: SERIAL_FRAMES, cpuPer1000: cpuA });
} finally {
  await cleanup();
}
