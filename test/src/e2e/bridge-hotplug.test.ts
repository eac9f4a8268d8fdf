import { test } from "node:test";
import assert from "node:assert/strict";
import { McuOfflineEvent, waitFor } from "@canopy/protocol";
import { bridgeMcus, Cleanup, countUp, leafEnv, ptyPair, readUp, simSummary, startBridge, startSim } from "./bridge-support.js";

test("glob ports are picked up when plugged in later; unplug → offline; the registry survives a bridge crash and resends are not duplicated", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-hotplug-");
  const args = ["--device", "d1", "--leaf", leaf.server.url, "--data", `${dir.path}/data`, "--serial", `${dir.path}/hp-*-bridge`, "--rescan-ms", "200"];
  let bridge = await startBridge(cleanup, args);

  const p1 = await ptyPair(cleanup, dir, "hp-1");
  startSim(cleanup, ["--id", "m-hp1", "--serial", p1.b, "--rate", "20"]);
  const p2 = await ptyPair(cleanup, dir, "hp-2");
  const sim2 = startSim(cleanup, ["--id", "m-hp2", "--serial", p2.b, "--binary", "--rate", "300", "--count", "1500"]);
  const online = await waitFor(
    async () => {
      const l = await bridgeMcus(leaf.nc);
      return l.filter((m) => m.online).length === 2 && l;
    },
    { timeoutMs: 15_000, what: "both hot-plugged MCUs online" },
  );
  assert.deepEqual(online.map((m) => m.link).sort(), [`serial:${p1.a}`, `serial:${p2.a}`]);
  const firstSeen = online.find((m) => m.id === "m-hp1")?.firstSeen;

  await p1.kill(); // unplug
  const off = await waitFor(async () => (await readUp(leaf, "up.d1.evt.mcu.m-hp1.offline"))[0], { timeoutMs: 10_000, what: "offline event" });
  assert.equal(McuOfflineEvent.parse(JSON.parse(off.data)).reason, "unplugged");

  // Power cut of the bridge mid-stream: frames it stored but never acked are resent by the MCU.
  await waitFor(async () => (await countUp(leaf, "up.d1.tlm.mcu.m-hp2.counter")) >= 400, { timeoutMs: 20_000, what: "400 readings" });
  bridge.killGroup("SIGKILL");
  await bridge.exited;
  bridge = await startBridge(cleanup, args);
  const code = await Promise.race([sim2.exited, new Promise((r) => setTimeout(r, 60_000, "timeout").unref())]);
  assert.equal(code, 0, sim2.output.slice(-5).join("\n"));
  assert.equal(simSummary(sim2)["acked"], 1500);
  const values = (await readUp(leaf, "up.d1.tlm.mcu.m-hp2.counter")).map((m) => Number(m.data));
  assert.equal(new Set(values).size, values.length, "a reading was stored twice across the crash");
  assert.equal(values.length, 1500);

  const after = await bridgeMcus(leaf.nc);
  const hp1 = after.find((m) => m.id === "m-hp1");
  assert.equal(hp1?.online, false);
  assert.equal(hp1?.firstSeen, firstSeen, "firstSeen survives a restart");
  assert.equal(after.find((m) => m.id === "m-hp2")?.online, true);
});
