import { test } from "node:test";
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { freePort } from "../harness/index.js";
import { bridgeStats, Cleanup, leafEnv, readUp, startBridge, type Leaf } from "./bridge-support.js";

const CLIENTS = 10;
const PER_CLIENT = 400;

/** CLIENTS MQTT clients fire PER_CLIENT QoS1 publishes each; returns when every PUBACK is in. */
async function burst(port: number): Promise<void> {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `mcu-${i}`, reconnectPeriod: 0, clean: true })),
  );
  await Promise.all(clients.map((c, i) => Promise.all(Array.from({ length: PER_CLIENT }, (_, k) => c.publishAsync(`mcu-${i}/tlm/seq`, `${i}:${k}`, { qos: 1 })))));
  await Promise.all(clients.map((c) => c.endAsync()));
}

/** Exactly CLIENTS × PER_CLIENT in UP (PUBACK came after the stream's ack), one msgID each, each client in order. */
async function assertExactlyOnceInOrder(leaf: Leaf): Promise<void> {
  const msgs = await readUp(leaf, "up.d1.tlm.mcu.>");
  assert.equal(msgs.length, CLIENTS * PER_CLIENT);
  const ids = new Set(msgs.map((m) => m.msgId));
  assert.equal(ids.size, CLIENTS * PER_CLIENT, "one Nats-Msg-Id per message");
  assert.equal(new Set(msgs.map((m) => m.data)).size, CLIENTS * PER_CLIENT, "no reading twice");
  const last = new Map<number, number>();
  for (const m of msgs) {
    const [i, k] = m.data.split(":").map(Number) as [number, number];
    assert.equal(k, (last.get(i) ?? -1) + 1, `client ${i}: ${k} stored after ${last.get(i)}`);
    last.set(i, k);
  }
}

test("bridge stores MQTT bursts in atomic batches: exactly once, in order, far fewer acks than messages", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-batch-");
  const port = await freePort();
  await startBridge(cleanup, ["--device", "d1", "--leaf", leaf.server.url, "--mqtt", `127.0.0.1:${port}`, "--data", `${dir.path}/data`]);
  await burst(port);
  await assertExactlyOnceInOrder(leaf);
  const stats = await bridgeStats(leaf.nc);
  assert.ok(stats.batches > 0, "bursts went out as batches");
  assert.ok(stats.batches < (CLIENTS * PER_CLIENT) / 4, `${stats.batches} batches for ${CLIENTS * PER_CLIENT} messages`);
});

test("bridge falls back to one publish per message when UP does not allow atomic batches", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-nobatch-");
  const info = await leaf.jsm.streams.info("UP");
  await leaf.jsm.streams.update("UP", { ...info.config, allow_atomic: false });
  const port = await freePort();
  await startBridge(cleanup, ["--device", "d1", "--leaf", leaf.server.url, "--mqtt", `127.0.0.1:${port}`, "--data", `${dir.path}/data`]);
  await burst(port);
  await assertExactlyOnceInOrder(leaf);
  const stats = await bridgeStats(leaf.nc);
  assert.equal(stats.batches, 0);
  assert.equal(stats.duplicates, 0);
});
