#!/usr/bin/env node
// Ingest with the tasmota profile (a documented ENERGY SENSOR document flattened into 10 numeric
// readings per PUBLISH) against the canopy profile (one reading per PUBLISH), same bridge, same run.
// Both: 20 MQTT clients, QoS 1, 20 in flight each, PUBACK after the leaf's UP stream stored every reading.
// Run after `npx tsc -b`: node bench/mqtt-profiles.mjs   (CANOPY_BENCH_MSGS = publishes per client)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsServerProcess, waitFor } from "@canopy/protocol";
import { CanopyProcess, freePort, tempDir } from "@canopy/test/harness/index";
import { qos1Load } from "./mqtt-load.mjs";

const CLIENTS = 20;
const PER_CLIENT = Number(process.env.CANOPY_BENCH_MSGS ?? 500);
const WINDOW = 20;
const SENSOR = readFileSync(fileURLToPath(new URL("../test/fixtures/mqtt/tasmota-sensor-energy.json", import.meta.url))).subarray(0, -1);
const READINGS_PER_SENSOR = 10;

const dir = await tempDir("canopy-bench-profiles-");
const cleanups = [];
const cleanup = async () => {
  for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {});
  await dir.remove();
};
const log = (...a) => process.stderr.write(`${a.join(" ")}\n`);

const load = (port, prefix, topicOf, payload) =>
  qos1Load(port, { clients: CLIENTS, perClient: PER_CLIENT, window: WINDOW, clientId: (i) => `${prefix}${i}`, topic: topicOf, payload });

try {
  const leafPort = await freePort();
  const conf = join(dir.path, "leaf.conf");
  writeFileSync(conf, `server_name: d1\nlisten: "127.0.0.1:${leafPort}"\njetstream { store_dir: "${dir.path}/leaf", domain: d1 }\n`);
  const leaf = new NatsServerProcess({ configFile: conf });
  cleanups.push(() => leaf.stop());
  await leaf.start();
  const nc = await connect({ servers: `nats://127.0.0.1:${leafPort}` });
  cleanups.push(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "UP", subjects: ["up.d1.>"], duplicate_window: 120e9, max_bytes: 2 ** 30 });
  const port = await freePort();
  const bridge = new CanopyProcess(["bridge", "--device", "d1", "--leaf", `nats://127.0.0.1:${leafPort}`, "--mqtt", `127.0.0.1:${port}`, "--mqtt-anonymous", "--max-mcus", "64", "--data", join(dir.path, "bridge"), "--log-level", "warn"]);
  cleanups.push(() => bridge.stop());
  await waitFor(() => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "probe", reconnectPeriod: 0 }).then((c) => c.endAsync().then(() => true), () => false), { timeoutMs: 30_000, what: "bridge listening" });
  const count = async (f) => Object.values((await jsm.streams.info("UP", { subjects_filter: f })).state.subjects ?? {}).reduce((a, b) => a + b, 0);

  log("canopy profile …");
  const canopy = await load(port, "c", (i) => `c${i}/tlm/power`, "45");
  log("tasmota profile …");
  const tasmota = await load(port, "t", (i) => `tele/t${i}/SENSOR`, SENSOR);
  const storedC = await count("up.d1.tlm.mcu.*.power");
  const storedT = await count("up.d1.tlm.mcu.*.energy.>");
  if (storedC !== CLIENTS * PER_CLIENT) throw new Error(`canopy: ${storedC} stored, expected ${CLIENTS * PER_CLIENT}`);
  if (storedT !== CLIENTS * PER_CLIENT * READINGS_PER_SENSOR) throw new Error(`tasmota: ${storedT} stored, expected ${CLIENTS * PER_CLIENT * READINGS_PER_SENSOR}`);

  const f = (n) => n.toFixed(0).padStart(7);
  console.log(`MQTT QoS1 ingest, ${CLIENTS} clients × ${PER_CLIENT} publishes (${WINDOW} in flight each), one bridge, one run`);
  console.log(`  canopy  <mcu>/tlm/power "45"          : ${f(canopy)} publishes/s = ${f(canopy)} readings/s`);
  console.log(`  tasmota tele/<t>/SENSOR (${SENSOR.length} B JSON) : ${f(tasmota)} publishes/s = ${f(tasmota * READINGS_PER_SENSOR)} readings/s (${READINGS_PER_SENSOR} per publish)`);
  console.log(`  publishes ratio ${(tasmota / canopy).toFixed(2)}, readings ratio ${((tasmota * READINGS_PER_SENSOR) / canopy).toFixed(2)}`);
  console.log(JSON.stringify({
    bench: "mqtt-profiles",
    figures: [
      { name: "tasmota_publishes_per_s", value: Math.round(tasmota), unit: "msgs/s", baseline: Math.round(canopy), ratio: Number((tasmota / canopy).toFixed(3)), goal: 0.1, better: "higher" },
      { name: "tasmota_readings_per_s", value: Math.round(tasmota * READINGS_PER_SENSOR), unit: "readings/s", baseline: Math.round(canopy), ratio: Number(((tasmota * READINGS_PER_SENSOR) / canopy).toFixed(3)), goal: 1, better: "higher" },
    ],
  }));
} finally {
  await cleanup();
}
