import { test } from "node:test";
import assert from "node:assert/strict";
import mqtt, { type MqttClient } from "mqtt";
import { waitFor } from "@canopy/protocol";
import { bridgePid, bySource, countSource, total } from "./matrix.js";
import { Fleet, freePort, readShard, waitForCount } from "../harness/index.js";

const CLIENTS = 5;
const PER_CLIENT = 3_000;
const KILLS = 2;

test(`${CLIENTS} mqtt npm clients publish QoS1 while the agent's bridge is SIGKILLed ${KILLS}×: every PUBACKed message in the hub exactly once, in order per client`, async (t) => {
  const fleet = await Fleet.start();
  const clients: MqttClient[] = [];
  t.after(async () => {
    await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    await fleet.stop();
  });
  const port = await freePort();
  const agent = await fleet.startAgent("pk", { args: ["--bridge-mqtt", `127.0.0.1:${port}`, "--bridge-mqtt-anonymous"] });
  const dev = "pk";

  // The npm client resends its in-flight window after reconnecting with DUP=0 (the case under test).
  for (let i = 0; i < CLIENTS; i++) {
    clients.push(mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `k${i}`, protocolVersion: i % 2 ? 5 : 4, reconnectPeriod: 200, connectTimeout: 2_000, clean: true }));
  }
  await waitFor(() => clients.every((c) => c.connected), { timeoutMs: 30_000, what: "clients connected to the agent's bridge" });

  let acked = 0;
  const sent = clients.map((c, i) =>
    Promise.all(
      Array.from({ length: PER_CLIENT }, (_, k) =>
        c.publishAsync(`k${i}/tlm/seq`, `${i}:${k}`, { qos: 1 }).then(() => {
          acked++;
        }),
      ),
    ),
  );

  const pids: number[] = [];
  for (let kill = 1; kill <= KILLS; kill++) {
    // Kill mid-stream: after a share of the messages was acked, with each client's window in flight.
    await waitFor(() => acked >= (kill * CLIENTS * PER_CLIENT) / (KILLS + 1), { timeoutMs: 120_000, intervalMs: 5, what: `${kill}/${KILLS + 1} acked` });
    const pid = bridgePid(agent);
    assert.ok(pid, "bridge pid in the agent's log");
    pids.push(pid);
    process.kill(pid, "SIGKILL");
    await waitFor(() => (bridgePid(agent) ?? pid) !== pid, { timeoutMs: 30_000, what: "the agent restarted the bridge" });
  }
  await Promise.all(sent);
  assert.equal(acked, CLIENTS * PER_CLIENT);
  assert.equal(new Set(pids).size, KILLS);

  const hub = await fleet.hubConnection();
  const filter = `up.${dev}.tlm.mcu.*.seq`;
  await waitForCount(hub, "FLEET_UP_0", filter, CLIENTS * PER_CLIENT, 60_000);
  const payloads = await readShard(hub, "FLEET_UP_0", filter);
  const sources = bySource(payloads);
  const perClient = Array.from({ length: CLIENTS }, (_, i) => sources.get(String(i)) ?? []);
  const { duplicates, orderViolations: regressions } = total(perClient.map((ks) => countSource(ks, [])));
  t.diagnostic(`acked ${acked}, in hub ${payloads.length}, duplicates ${duplicates}, order regressions ${regressions}`);
  assert.equal(payloads.length, CLIENTS * PER_CLIENT);
  assert.equal(duplicates, 0);
  assert.equal(regressions, 0);
  for (const ks of perClient) assert.deepEqual(ks, Array.from({ length: PER_CLIENT }, (_, k) => k));
});
