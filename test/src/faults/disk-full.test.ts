import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import mqtt from "mqtt";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { waitFor } from "@canopy/protocol";
import { Fleet, checkSequence, freePort, publishSeries, readShard, waitForCount } from "../harness/index.js";

// Issue 10, "Disk full": a device whose data partition fills up keeps running, refuses new data with
// an error to the publisher (JetStream error to an app, MQTT 5 PUBACK "quota exceeded" through the
// bridge), reports disk_full in `devices` and `backlog`, recovers by itself once space is freed, and
// loses nothing it had acked. The partition is a 48 MiB tmpfs mounted on the device's data dir.
const DEVICE = "full1";
const APP = `up.${DEVICE}.tlm.series`;
const MCU = `up.${DEVICE}.tlm.mcu.m5.seq`;
const QUOTA_EXCEEDED = 0x97;

interface Row {
  device: string;
  online: boolean;
  diskFull?: boolean;
}

function withDeadline<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Writes a file until the partition refuses (ENOSPC). */
async function fill(path: string): Promise<number> {
  const f = await open(path, "w");
  const chunk = Buffer.alloc(256 * 1024, 1);
  let written = 0;
  try {
    for (;;) written += (await f.write(chunk)).bytesWritten;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    await f.close().catch(() => {});
  }
  return written;
}

/** One JetStream publish per index, all at once, no retry: which were acked, and the errors of the others. */
async function tryPublish(nc: NatsConnection, from: number, count: number): Promise<{ acked: Set<number>; errors: string[] }> {
  const js = jetstream(nc);
  const acked = new Set<number>();
  const errors: string[] = [];
  await Promise.all(
    Array.from({ length: count }, async (_, k) => {
      const i = from + k;
      try {
        await js.publish(APP, String(i), { msgID: `${DEVICE}:app:${APP}:${i}`, timeout: 3_000 });
        acked.add(i);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }),
  );
  return { acked, errors };
}

test("data partition full: agent keeps running, refuses new data (JetStream error, MQTT 5 PUBACK 0x97), reports disk_full, recovers when freed; every acked message reaches the hub once, in order", async (t) => {
  const fleet = await Fleet.start();
  const dataDir = join(fleet.dir.path, "devices", DEVICE);
  await mkdir(dataDir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", dataDir]);
  const client = { c: undefined as mqtt.MqttClient | undefined };
  t.after(async () => {
    await client.c?.endAsync(true).catch(() => {});
    await fleet.agents.get(DEVICE)?.proc.stop();
    execFileSync("umount", ["-l", dataDir]);
    await fleet.stop();
  });
  const started = Date.now();
  const port = await freePort();
  const agent = await fleet.startAgent(DEVICE, { args: ["--bridge-mqtt", `127.0.0.1:${port}`, "--bridge-mqtt-anonymous"] });
  const leaf = await fleet.leafConnection(DEVICE);
  const hub = await fleet.hubConnection();
  const shard = "FLEET_UP_0";
  const rows = async (cmd: string): Promise<Row | undefined> => {
    const r = await fleet.cli([cmd, "--json"]);
    return (JSON.parse(r.stdout) as Row[]).find((d) => d.device === DEVICE);
  };
  const diskFull = async (cmd = "devices"): Promise<boolean | undefined> => {
    const row = await rows(cmd);
    return row?.online ? row.diskFull : undefined;
  };
  const step = (what: string): void => console.log(`# ${Date.now() - started} ms: ${what}`);
  const dump = (err: Error): never => {
    console.log(agent.proc.output.slice(-40).join("\n"));
    throw err;
  };

  // UP is sized from the partition: half of what the leaf may store (80 % of the free space).
  const up = (await (await jetstreamManager(leaf)).streams.info("UP")).config;
  assert.ok(up.max_bytes > 0 && up.max_bytes <= 0.5 * 48 * 2 ** 20, `UP max_bytes ${up.max_bytes} sized from a 48 MiB partition`);

  const m5 = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: "m5", protocolVersion: 5, reconnectPeriod: 200, connectTimeout: 2_000 });
  client.c = m5;
  await waitFor(() => m5.connected, { timeoutMs: 30_000, what: "MQTT 5 client connected to the bridge" });
  const mqttAcked: number[] = [];
  const mqttSend = async (from: number, count: number): Promise<Array<number | undefined>> =>
    withDeadline(60_000, `MQTT publishes ${from}..${from + count - 1} answered`, Promise.all(
      Array.from({ length: count }, (_, k) =>
        m5.publishAsync("m5/tlm/seq", String(from + k), { qos: 1 }).then(
          () => void mqttAcked.push(from + k),
          (err: Error & { code?: number }) => err.code ?? -1,
        ),
      ),
    )).catch(dump);

  const first = await publishSeries(leaf, { device: DEVICE, subject: APP, count: 1_000, window: 100 });
  assert.equal(first.size, 1_000);
  assert.deepEqual((await mqttSend(0, 200)).filter((c) => c !== undefined), []);
  await waitForCount(hub, shard, APP, 1_000, 60_000);

  step("first 1000 + 200 MQTT in the hub");
  // Link down: what is published now waits on the device's disk.
  agent.link.cut();
  const offline = await publishSeries(leaf, { device: DEVICE, subject: APP, from: 1_000, count: 500, window: 50 });
  assert.equal(offline.size, 500, "acked on the device while the hub is unreachable");

  step("500 acked offline");
  const filler = join(dataDir, "filler.bin");
  assert.ok((await fill(filler)) > 0);
  // New data is refused with an error to the publisher, not silently taken.
  const during = await tryPublish(leaf, 2_000, 20);
  assert.ok(during.acked.size < 20, `publishes refused on a full disk (acked ${during.acked.size} of 20)`);
  t.diagnostic(`app publishes on the full disk: ${20 - during.acked.size} of 20 refused: ${[...new Set(during.errors)].join(" | ")}`);

  step("disk filled, app refused");
  agent.link.restore();
  await waitFor(async () => (await diskFull()) === true, { timeoutMs: 30_000, what: "devices --json to show disk_full" }).catch(dump);
  assert.equal((await rows("backlog"))?.diskFull, true, "backlog --json shows disk_full");
  assert.ok(agent.proc.running, "the agent keeps running");
  const fullAt = Date.now();

  step("disk_full shown");
  // Through the bridge: each QoS1 publish gets PUBACK 0x97 (quota exceeded), the connection stays.
  const refused = await mqttSend(200, 5);
  assert.deepEqual(refused, [QUOTA_EXCEEDED, QUOTA_EXCEEDED, QUOTA_EXCEEDED, QUOTA_EXCEEDED, QUOTA_EXCEEDED], "MQTT 5 PUBACK reason per refused publish");
  assert.ok(m5.connected, "the MQTT connection stays up");

  step("MQTT refused");
  await rm(filler);
  const freedAt = Date.now();
  await waitFor(async () => (await diskFull()) === false, { timeoutMs: 60_000, what: "the device to recover by itself" }).catch(dump);
  const recoveredMs = Date.now() - freedAt;
  step("recovered");
  const after = await publishSeries(leaf, { device: DEVICE, subject: APP, from: 3_000, count: 300, window: 50, retryUntil: Date.now() + 30_000 });
  assert.equal(after.size, 300, "app publishing works again");
  assert.deepEqual((await mqttSend(300, 200)).filter((c) => c !== undefined), [], "MQTT publishing works again");
  assert.ok(agent.proc.running, "the agent never exited");

  step("after publishes acked");
  const expected = [...first, ...offline, ...during.acked, ...after].sort((a, b) => a - b);
  await waitForCount(hub, shard, APP, expected.length, 90_000);
  const appInHub = await readShard(hub, shard, APP);
  // Up to the fault, in publish order. After it the app had 50 publishes in flight while the leaf
  // restarted (the guard's restart, and the mirror watch's after the link cut): a retried publish lands
  // after later ones that went through. That order is the app's; what the device owes is every acked
  // message exactly once.
  assert.equal(checkSequence(appInHub.slice(0, first.size + offline.size), [...first, ...offline].sort((a, b) => a - b)), undefined);
  assert.deepEqual(appInHub.map(Number).sort((a, b) => a - b), expected, "every acked app message in the hub exactly once");
  await waitForCount(hub, shard, MCU, mqttAcked.length, 60_000);
  const mcuInHub = await readShard(hub, shard, MCU);
  assert.equal(mqttAcked.length, 400);
  assert.equal(checkSequence(mcuInHub, [...mqttAcked].sort((a, b) => a - b)), undefined, "every PUBACKed MQTT message once, in order; no refused one");
  t.diagnostic(
    `disk full: app ${expected.length} acked = ${expected.length} in the hub once (refused ${20 - during.acked.size}); ` +
      `MQTT ${mqttAcked.length} PUBACKed = ${mcuInHub.length} in the hub, 5 refused with 0x97; ` +
      `disk_full shown ${fullAt - started} ms into the test, recovered ${recoveredMs} ms after the filler was removed; total ${Date.now() - started} ms`,
  );
});
