import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import mqtt from "mqtt";
import { McuOfflineEvent, waitFor } from "@canopy/protocol";
import { freePort, runCanopy, tempDir } from "../harness/index.js";
import { bridgeStats, Cleanup, countUp, leafEnv, readUp, startBridge, type Leaf } from "./bridge-support.js";
import { connectPacket, publishPacket, rawExchange } from "./bridge-mqtt-raw.js";

async function setup(t: { after(fn: () => Promise<void>): void }, extra: string[] = []) {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-mqttp-");
  const port = await freePort();
  const bridge = await startBridge(cleanup, ["--device", "d1", "--leaf", leaf.server.url, "--mqtt", `127.0.0.1:${port}`, "--data", `${dir.path}/data`, "--max-packet-bytes", "4096", ...(extra.includes("--mqtt-users") ? [] : ["--mqtt-anonymous"]), ...extra]);
  return { dir, leaf, port, bridge };
}

const counter = async (leaf: Leaf, name: string): Promise<number> => (await bridgeStats(leaf.nc)).counters[name] ?? 0;

test("bad input closes the connection as the spec says and is counted", async (t) => {
  const { leaf, port } = await setup(t);
  const cases: Array<{ name: string; counter: string; chunks: Buffer[]; version?: 4 | 5; end?: boolean; expect?: (r: Awaited<ReturnType<typeof rawExchange>>) => void }> = [
    { name: "QoS 2 publish (3.1.1)", counter: "mqtt.qos2", chunks: [connectPacket("q2"), publishPacket("q2/tlm/x", "1", 4, 2)] },
    {
      name: "QoS 2 publish (5.0) → DISCONNECT 0x9B",
      counter: "mqtt.qos2",
      version: 5,
      chunks: [connectPacket("q25", 5), publishPacket("q25/tlm/x", "1", 5, 2)],
      expect: (r) => assert.ok(r.received.some((p) => p.cmd === "disconnect" && p.reasonCode === 0x9b), JSON.stringify(r.received)),
    },
    { name: "wildcard in a publish topic", counter: "mqtt.wildcard", chunks: [connectPacket("w1"), publishPacket("w1/tlm/+", "1")] },
    { name: "topic level outside the id rule", counter: "mqtt.invalid_id", chunks: [connectPacket("i1"), publishPacket("i1/tlm/a b", "1")] },
    {
      name: "ill-formed UTF-8 topic",
      counter: "mqtt.bad_utf8",
      chunks: [connectPacket("u1"), Buffer.from(publishPacket("u1/tlm/ab", "1").toString("latin1").replace("ab", "\xc3\x28"), "latin1")],
    },
    { name: "U+0000 in a topic", counter: "mqtt.nul", chunks: [connectPacket("n1"), publishPacket("n1/tlm/a\u0000b", "1")] },
    { name: "second CONNECT", counter: "mqtt.second_connect", chunks: [connectPacket("s1"), connectPacket("s1")] },
    { name: "packet over the cap", counter: "mqtt.oversize", chunks: [connectPacket("o1"), publishPacket("o1/tlm/x", "x".repeat(5000))] },
    { name: "first packet not CONNECT", counter: "mqtt.not_connect_first", chunks: [publishPacket("p1/tlm/x", "1")] },
    { name: "EOF inside a packet", counter: "mqtt.truncated", chunks: [connectPacket("e1"), publishPacket("e1/tlm/x", "12345").subarray(0, 6)], end: true },
    {
      name: "client id outside the id rule → CONNACK 0x85",
      counter: "mqtt.invalid_id",
      version: 5,
      chunks: [connectPacket("bad id", 5)],
      expect: (r) => assert.ok(r.received.some((p) => p.cmd === "connack" && p.reasonCode === 0x85), JSON.stringify(r.received)),
    },
    {
      name: "another MCU's topic (3.1.1)",
      counter: "mqtt.topic_denied",
      chunks: [connectPacket("a1"), publishPacket("a2/tlm/x", "1")],
    },
  ];
  for (const c of cases) {
    const before = await counter(leaf, c.counter);
    const rejected = await counter(leaf, "mqtt.rejected");
    const r = await rawExchange(port, c.chunks, { version: c.version ?? 4, ...(c.end ? { end: true } : {}) });
    assert.ok(r.closedByServer || c.end, `${c.name}: server did not close`);
    c.expect?.(r);
    await waitFor(async () => (await counter(leaf, c.counter)) === before + 1, { timeoutMs: 5_000, what: `${c.name}: ${c.counter} +1` });
    assert.equal(await counter(leaf, "mqtt.rejected"), rejected + 1, c.name);
  }
  assert.equal(await countUp(leaf, "up.d1.tlm.>"), 0, "nothing rejected reached UP");
});

test("MQTT 5: a publish outside the topic map gets PUBACK 0x87 and the connection stays; SUBSCRIBE only to own commands", async (t) => {
  const { leaf, port } = await setup(t);
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "v5", protocolVersion: 5, reconnectPeriod: 0 });
  t.after(() => c.endAsync());
  await assert.rejects(c.publishAsync("v5/other/x", "1", { qos: 1 }), /Not authorized|135/i);
  await c.publishAsync("v5/tlm/ok", "1", { qos: 1 });
  assert.equal(await countUp(leaf, "up.d1.tlm.mcu.v5.ok"), 1);
  const granted = await c.subscribeAsync({ "v5/cmd/+": { qos: 1 } });
  assert.deepEqual(granted.map((g) => g.qos), [1]);
  await assert.rejects(c.subscribeAsync({ "other/cmd/+": { qos: 1 } }), /Not authorized/);
  assert.equal(await counter(leaf, "mqtt.subscribe_denied"), 1);
  assert.equal(await counter(leaf, "mqtt.rejected"), 0);
});

test("Last Will → lwt event and MCU offline event (reason will); clean DISCONNECT → no will", async (t) => {
  const { leaf, port } = await setup(t);
  const opts = { protocolVersion: 4 as const, reconnectPeriod: 0, will: { topic: "", payload: Buffer.from("bye"), qos: 1 as const, retain: false } };
  const dying = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { ...opts, clientId: "w-die", will: { ...opts.will, topic: "w-die/evt/lwt" } });
  const polite = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { ...opts, clientId: "w-ok", will: { ...opts.will, topic: "w-ok/evt/lwt" } });
  dying.stream.destroy(); // power cut: no DISCONNECT
  await polite.endAsync();
  const lwt = await waitFor(async () => (await readUp(leaf, "up.d1.evt.mcu.w-die.lwt"))[0], { timeoutMs: 10_000, what: "will message" });
  assert.equal(lwt.data, "bye");
  const off = await waitFor(async () => (await readUp(leaf, "up.d1.evt.mcu.*.offline")).length === 2 && readUp(leaf, "up.d1.evt.mcu.*.offline"), { timeoutMs: 10_000, what: "two offline events" });
  const reasons = Object.fromEntries(off.map((m) => McuOfflineEvent.parse(JSON.parse(m.data))).map((e) => [e.mcu, e.reason]));
  assert.deepEqual(reasons, { "w-die": "will", "w-ok": "disconnect" });
  assert.equal(await countUp(leaf, "up.d1.evt.mcu.w-ok.lwt"), 0);
});

test("keep-alive: 1.5 × keepalive of silence closes the connection and marks the MCU offline", async (t) => {
  const { leaf, port } = await setup(t);
  const started = Date.now();
  const r = await rawExchange(port, [connectPacket("ka", 4, { keepalive: 1 })], { waitMs: 6_000 });
  assert.ok(r.closedByServer);
  const took = Date.now() - started;
  assert.ok(took >= 1400 && took < 5000, `closed after ${took} ms`);
  assert.equal(await counter(leaf, "mqtt.keepalive_timeout"), 1);
  const off = await waitFor(async () => (await readUp(leaf, "up.d1.evt.mcu.ka.offline"))[0], { timeoutMs: 5_000, what: "offline event" });
  assert.equal(McuOfflineEvent.parse(JSON.parse(off.data)).reason, "keepalive");
});

test("user name and password: stored as scrypt hashes, checked on CONNECT", async (t) => {
  const dir = await tempDir("canopy-bridge-auth-");
  t.after(() => dir.remove());
  const h = await runCanopy(["bridge", "hash-password"], { input: "s3cret" });
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /^scrypt\$\d+\$/);
  const users = `${dir.path}/users`;
  await writeFile(users, `# MQTT users\nsensor:${h.stdout.trim()}\n`);
  const { port } = await setup(t, ["--mqtt-users", users]);
  const ok = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "au", username: "sensor", password: "s3cret", reconnectPeriod: 0 });
  await ok.endAsync();
  await assert.rejects(
    mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "au", username: "sensor", password: "wrong", reconnectPeriod: 0 }),
    /Not authorized/i,
  );
  await assert.rejects(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "au", protocolVersion: 5, reconnectPeriod: 0 }), /Not authorized|135/i);
});

test("PUBACK only after the leaf's UP stream acked: no PUBACK while the leaf is down, then exactly one copy", async (t) => {
  const { leaf, port } = await setup(t);
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "pa", reconnectPeriod: 0 });
  t.after(() => c.endAsync(true));
  await c.publishAsync("pa/tlm/x", "before", { qos: 1 });
  await leaf.server.stop();
  let acked = false;
  const p = c.publishAsync("pa/tlm/x", "during", { qos: 1 }).then(() => (acked = true));
  await assert.rejects(waitFor(() => acked, { timeoutMs: 2_000, what: "no PUBACK" }));
  await leaf.server.start();
  await waitFor(() => acked, { timeoutMs: 20_000, what: "PUBACK after the leaf is back" });
  await p;
  const msgs = await readUp(leaf, "up.d1.tlm.mcu.pa.x");
  assert.deepEqual(msgs.map((m) => m.data), ["before", "during"]);
});
