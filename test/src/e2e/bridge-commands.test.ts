import { test } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/nats-core";
import { McuAckEvent, McuCommandResult, Subjects, encode, waitFor, type McuCommandRequestInput } from "@canopy/protocol";
import { freePort } from "../harness/index.js";
import { bridgeMcus, Cleanup, leafEnv, ptyPair, readUp, startBridge, startSim } from "./bridge-support.js";

/** What the agent does for `mcu.<name>`: a core request on the leaf-local command subject. */
async function ask(nc: NatsConnection, mcu: string, name: string, body: McuCommandRequestInput): Promise<McuCommandResult> {
  const m = await nc.request(Subjects.localMcuCommand("d1", mcu, name), encode(body), { timeout: 10_000 });
  return McuCommandResult.parse(m.json());
}

test("a command reaches the sim MCU over serial (binary and text) and MQTT (3.1.1 and 5); the MCU's ack is the reply and an event", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-cmd-");
  const bin = await ptyPair(cleanup, dir, "bin");
  const txt = await ptyPair(cleanup, dir, "txt");
  const port = await freePort();
  await startBridge(cleanup, [
    "--device", "d1", "--leaf", leaf.server.url, "--data", `${dir.path}/data`,
    "--serial", bin.a, "--serial", txt.a, "--mqtt", `127.0.0.1:${port}`, "--mqtt-anonymous",
  ]);
  const sims = [
    startSim(cleanup, ["--id", "m-bin", "--serial", bin.b, "--binary", "--rate", "2", "--board", "rp2040", "--firmware", "2.1.0"]),
    startSim(cleanup, ["--id", "m-txt", "--serial", txt.b, "--rate", "2"]),
    startSim(cleanup, ["--id", "m-mq4", "--mqtt", `127.0.0.1:${port}`, "--rate", "2"]),
    startSim(cleanup, ["--id", "m-mq5", "--mqtt", `127.0.0.1:${port}`, "--rate", "2", "--mqtt-version", "5", "--board", "esp32-c3"]),
  ];
  assert.equal(sims.length, 4);

  const ids = ["m-bin", "m-txt", "m-mq4", "m-mq5"];
  const mcus = await waitFor(
    async () => {
      const list = await bridgeMcus(leaf.nc);
      return ids.every((id) => list.find((m) => m.id === id)?.online) && list;
    },
    { timeoutMs: 20_000, what: "four MCUs online in local.bridge.mcus" },
  );
  const byId = new Map(mcus.map((m) => [m.id, m]));
  assert.equal(byId.get("m-bin")?.board, "rp2040");
  assert.equal(byId.get("m-bin")?.firmware, "2.1.0");
  assert.equal(byId.get("m-bin")?.link, `serial:${bin.a}`);
  assert.equal(byId.get("m-mq5")?.board, "esp32-c3");
  assert.match(byId.get("m-mq4")?.link ?? "", /^mqtt:127\.0\.0\.1:\d+$/);
  for (const m of mcus) assert.ok(m.firstSeen > 0 && m.firstSeen <= m.lastSeen);

  // MQTT sims subscribe right after CONNACK: the bridge retries a freshly attached MCU's write.
  for (const id of ids) {
    const r = await ask(leaf.nc, id, "blink", { id: `c-${id}`, payload: "3", waitMs: 5_000 });
    assert.deepEqual(r, { id: `c-${id}`, status: "ok", detail: "blinked 3" });
  }
  for (const id of ids) {
    const ev = await waitFor(
      async () => {
        const msgs = await readUp(leaf, `up.d1.evt.mcu.${id}.ack.blink`);
        return msgs.map((m) => McuAckEvent.parse(JSON.parse(m.data))).find((e) => e.id === `c-${id}`);
      },
      { timeoutMs: 20_000, what: `ack event of ${id}` },
    );
    assert.equal(ev.status, "ok", JSON.stringify(ev));
    assert.equal(ev.detail, "blinked 3");
    assert.equal(ev.mcu, id);
  }

  // An unknown command is answered with an error by the MCU; an MCU never seen is unknown at once.
  assert.deepEqual(await ask(leaf.nc, "m-txt", "selfdestruct", { id: "c-sd" }), { id: "c-sd", status: "error", detail: "unknown command selfdestruct" });
  assert.equal((await ask(leaf.nc, "nobody", "blink", { id: "c-nb", waitMs: 5_000 })).status, "unknown");

  // A core publish on the device's command subject is not a journalled command: no MCU acts on it.
  leaf.nc.publish("cmd.d1.mcu.m-txt.blink", "7");
  await leaf.nc.flush();
  assert.equal((await ask(leaf.nc, "m-txt", "ping", { id: "c-after" })).detail, "pong");
  const acks = await readUp(leaf, "up.d1.evt.mcu.m-txt.ack.blink");
  assert.equal(acks.length, 1, "only the requested blink was acked");
});
