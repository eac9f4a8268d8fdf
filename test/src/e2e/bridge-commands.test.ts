import { test } from "node:test";
import assert from "node:assert/strict";
import { headers } from "@nats-io/nats-core";
import { MCU_COMMAND_ID_HEADER, McuAckEvent, McuCommandReply, waitFor } from "@canopy/protocol";
import { freePort } from "../harness/index.js";
import { bridgeMcus, Cleanup, leafEnv, ptyPair, readUp, startBridge, startSim } from "./bridge-support.js";

test("a command reaches the sim MCU over serial (binary and text) and MQTT (3.1.1 and 5); its ack comes back as an event", async (t) => {
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

  // MQTT sims subscribe right after CONNACK; a command sent before the SUBACK would be undeliverable.
  for (const id of ids) {
    const h = headers();
    h.set(MCU_COMMAND_ID_HEADER, `c-${id}`);
    const reply = await waitFor(
      async () => {
        const r = McuCommandReply.parse((await leaf.nc.request(`cmd.d1.mcu.${id}.blink`, "3", { headers: h, timeout: 5_000 })).json());
        return r.delivered && r;
      },
      { timeoutMs: 20_000, what: `command delivered to ${id}` },
    );
    assert.equal(reply.id, `c-${id}`);
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

  // An unknown command is answered with an error by the MCU; an absent MCU is undeliverable at once.
  await leaf.nc.request("cmd.d1.mcu.m-txt.selfdestruct", "", { timeout: 5_000 });
  const err = await waitFor(async () => (await readUp(leaf, "up.d1.evt.mcu.m-txt.ack.selfdestruct"))[0], { timeoutMs: 10_000, what: "error ack" });
  assert.equal(McuAckEvent.parse(JSON.parse(err.data)).status, "error");
  const gone = McuCommandReply.parse((await leaf.nc.request("cmd.d1.mcu.nobody.blink", "", { timeout: 5_000 })).json());
  assert.equal(gone.delivered, false);
  assert.match(gone.error ?? "", /offline/);
});
