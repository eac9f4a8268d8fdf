import { test } from "node:test";
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { waitFor } from "@canopy/protocol";
import { freePort } from "../harness/index.js";
import { bridgeStats, Cleanup, countUp, leafEnv, readUp, startBridge } from "./bridge-support.js";

const CLIENTS = 20;
const PER_CLIENT = 500;

test("20 MQTT clients × 500 QoS1 → exactly 10,000 in UP, none duplicated, each client's order kept", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-mqtt-");
  const port = await freePort();
  await startBridge(cleanup, ["--device", "d1", "--leaf", leaf.server.url, "--mqtt", `127.0.0.1:${port}`, "--data", `${dir.path}/data`, "--mqtt-anonymous"]);

  // Half the clients speak MQTT 3.1.1, half 5.0; each fires all 500 publishes without waiting.
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        clientId: `mcu-${i}`,
        protocolVersion: i % 2 === 0 ? 4 : 5,
        reconnectPeriod: 0,
        clean: true,
      }),
    ),
  );
  await Promise.all(
    clients.map((c, i) =>
      Promise.all(Array.from({ length: PER_CLIENT }, (_, k) => c.publishAsync(`mcu-${i}/tlm/seq`, `${i}:${k}`, { qos: 1 }))),
    ),
  );
  // Every PUBACK came after the stream's ack, so the messages are there now: no waiting needed.
  assert.equal(await countUp(leaf, "up.d1.tlm.mcu.>"), CLIENTS * PER_CLIENT);
  await Promise.all(clients.map((c) => c.endAsync()));

  const msgs = await readUp(leaf, "up.d1.tlm.mcu.>");
  assert.equal(msgs.length, CLIENTS * PER_CLIENT);
  const seen = new Set<string>();
  const msgIds = new Set<string>();
  const last = new Map<number, number>();
  for (const m of msgs) {
    assert.ok(!seen.has(m.data), `duplicate ${m.data}`);
    seen.add(m.data);
    assert.ok(m.msgId && /^d1:\d+$/.test(m.msgId), `msgID ${m.msgId}`);
    assert.ok(!msgIds.has(m.msgId), `duplicate msgID ${m.msgId}`);
    msgIds.add(m.msgId);
    const [i, k] = m.data.split(":").map(Number) as [number, number];
    assert.equal(m.subject, `up.d1.tlm.mcu.mcu-${i}.seq`);
    assert.ok(k > (last.get(i) ?? -1), `client ${i}: ${k} stored after ${last.get(i)}`);
    last.set(i, k);
  }
  assert.equal(seen.size, CLIENTS * PER_CLIENT);
  const stats = await bridgeStats(leaf.nc);
  assert.equal(stats.counters["mqtt.rejected"] ?? 0, 0);
  await waitFor(async () => (await countUp(leaf, "up.d1.evt.mcu.*.offline")) === CLIENTS, { timeoutMs: 10_000, what: "20 offline events" });
});
