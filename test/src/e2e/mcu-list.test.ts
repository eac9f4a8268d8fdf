import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { CanopyProcess, Fleet, freePort, json } from "../harness/index.js";

let fleet: Fleet;
let sim: CanopyProcess | undefined;
before(async () => {
  fleet = await Fleet.start();
});
after(async () => {
  await sim?.stop();
  await fleet?.stop();
});

interface McuRow {
  device: string;
  id: string;
  board: string;
  online: boolean;
  link: string;
}

test("the agent runs the bridge from its options; the MCU shows in canopy mcu list, and its data reaches the hub", async () => {
  const mqttPort = await freePort();
  await fleet.startAgent("pi-m", { args: ["--bridge-mqtt", `127.0.0.1:${mqttPort}`, "--bridge-mqtt-anonymous"] });
  // The bridge is a child of the agent: wait for its MQTT listener, then attach a simulated MCU.
  sim = await waitFor(
    async () => {
      const p = new CanopyProcess(["sim", "mcu", "--id", "m-sim", "--mqtt", `127.0.0.1:${mqttPort}`, "--rate", "5"]);
      const ok = await p.waitForOutput(/connected|online|hello|publish/i, 15_000).then(() => true, () => false);
      if (ok && p.running) return p;
      await p.stop();
      return undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: "sim MCU connected to the agent's bridge" },
  );
  const rows = await waitFor(
    async () => {
      const r = await fleet.cli(["mcu", "list", "--device", "pi-m", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const list = json<McuRow[]>(r);
      return list.find((m) => m.id === "m-sim" && m.online) ? list : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500, what: "m-sim online in canopy mcu list" },
  );
  assert.equal(rows[0]?.device, "pi-m");
  assert.match(rows[0]?.link ?? "", /mqtt/);
  await waitFor(
    async () => {
      const r = await fleet.cli(["tail", "--device", "pi-m", "--subject", "up.pi-m.tlm.mcu.m-sim.>", "--json"]);
      return r.code === 0 && r.stdout.trim().length > 0;
    },
    { timeoutMs: 30_000, intervalMs: 1_000, what: "MCU telemetry in the hub" },
  );
  const bad = await fleet.cli(["mcu", "list", "--device", "bad.id"]);
  assert.equal(bad.code, 2);
});
