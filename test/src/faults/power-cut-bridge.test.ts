import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { waitFor } from "@canopy/protocol";
import { bySource, countSource, total } from "./matrix.js";
import { Fleet, freePort, readShard, waitForCount } from "../harness/index.js";
import { VolatileFs, requireVolatileFs, type PowerCutStats } from "./volatile-fs.js";

// Issue 10, "Power cut", the MCU path: the leaf's store, the agent's LMDB (state/) and the bridge's
// LMDB (bridge/, its dedup entries) each on a volatile FUSE layer (writes not fsynced are undone at
// the cut). MQTT QoS1 clients publish through the agent's bridge; the agent's process group is
// SIGKILLed mid-stream and the power cut; after the reboot the clients reconnect and resend what was
// not PUBACKed (the `mqtt` npm client resends with DUP=0). Every PUBACKed message must be in the hub
// exactly once, in order per client: the bridge commits a message's dedup entry with sync before the
// stream has it, and the leaf fsyncs before its ack (`sync_interval: always`).
const DEVICE = "pcb";
const CLIENTS = 3;
const PER_CLIENT = 1_500;

test(`power cut under MQTT QoS1 ingest (${CLIENTS} clients), leaf + agent + bridge data on volatile layers: every PUBACKed message in the hub once, in order`, async (t) => {
  requireVolatileFs();
  const fleet = await Fleet.start();
  const layers: VolatileFs[] = [];
  const clients: MqttClient[] = [];
  t.after(async () => {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    await fleet.agents.get(DEVICE)?.proc.stop();
    for (const l of layers) await l.unmount().catch(() => {});
    await fleet.stop();
  });
  const dataDir = join(fleet.dir.path, "devices", DEVICE);
  const volatile = ["leaf", "state", "bridge"];
  const mountAll = async (): Promise<void> => {
    layers.length = 0;
    for (const d of volatile) layers.push(await VolatileFs.mount(join(fleet.dir.path, `${DEVICE}-disk`, d), join(dataDir, d)));
  };
  await mkdir(dataDir, { recursive: true });
  await mountAll();
  const config = join(fleet.dir.path, `${DEVICE}.json`);
  await writeFile(config, JSON.stringify({ leaf: { syncInterval: "always" } }));
  const port = await freePort();
  const args = ["--config", config, "--bridge-mqtt", `127.0.0.1:${port}`, "--bridge-mqtt-anonymous"];
  const agent = await fleet.startAgent(DEVICE, { args });

  for (let i = 0; i < CLIENTS; i++) {
    clients.push(mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `p${i}`, protocolVersion: i % 2 ? 5 : 4, reconnectPeriod: 300, connectTimeout: 3_000, clean: false }));
  }
  await waitFor(() => clients.every((c) => c.connected), { timeoutMs: 30_000, what: "MQTT clients connected to the bridge" });
  agent.link.cut(); // what is PUBACKed now lives only on the device's (volatile) disk
  let acked = 0;
  const ackedBeforeCut: number[] = [];
  let cut = false;
  const sent = clients.map((c, i) =>
    Promise.all(
      Array.from({ length: PER_CLIENT }, (_, k) =>
        c.publishAsync(`p${i}/tlm/seq`, `${i}:${k}`, { qos: 1 }).then(() => {
          acked++;
          if (!cut) ackedBeforeCut.push(i * PER_CLIENT + k);
        }),
      ),
    ),
  );
  await waitFor(() => acked >= (CLIENTS * PER_CLIENT) / 3, { timeoutMs: 120_000, intervalMs: 2, what: "a third PUBACKed" });
  agent.proc.killGroup("SIGKILL");
  cut = true;
  await agent.proc.exited;
  const stats: PowerCutStats[] = [];
  for (const l of layers) stats.push(await l.cut());

  await mountAll();
  const rebooted = await fleet.startAgent(DEVICE, { enroll: false, args });
  rebooted.link.restore();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(sent),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`after the reboot only ${acked} of ${CLIENTS * PER_CLIENT} PUBACKed`)), 120_000))),
  ]).finally(() => clearTimeout(timer));
  assert.equal(acked, CLIENTS * PER_CLIENT);

  const hub = await fleet.hubConnection();
  const filter = `up.${DEVICE}.tlm.mcu.*.seq`;
  await waitForCount(hub, "FLEET_UP_0", filter, CLIENTS * PER_CLIENT, 90_000);
  const payloads = await readShard(hub, "FLEET_UP_0", filter);
  const sources = bySource(payloads);
  const perClient = Array.from({ length: CLIENTS }, (_, i) => sources.get(String(i)) ?? []);
  const { duplicates, orderViolations: regressions } = total(perClient.map((ks) => countSource(ks, [])));
  const undone = stats.map((s, n) => `${volatile[n]} ${s.dropped_writes}/${s.writes} writes (${s.syncs} fsyncs)`).join(", ");
  t.diagnostic(
    `power cut at ${ackedBeforeCut.length} PUBACKed; after reboot ${acked} PUBACKed, ${payloads.length} in the hub, ${duplicates} duplicates, ` +
      `${regressions} order regressions; unsynced writes undone: ${undone}`,
  );
  assert.equal(duplicates, 0);
  assert.equal(regressions, 0);
  for (const ks of perClient) assert.deepEqual(ks, Array.from({ length: PER_CLIENT }, (_, k) => k));
});
