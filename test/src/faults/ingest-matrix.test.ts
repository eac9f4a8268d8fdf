import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { countIn, Fleet, freePort, readShard, tempDir, waitForCount, type TempDir } from "../harness/index.js";
import { bridgeStats, PtyPair, simSummary } from "../e2e/bridge-support.js";
import { CanopyProcess } from "../harness/index.js";
import { FAULTS, countSource, inject, mqttLoad, reach, type AgentSpec, type Load } from "./matrix.js";

/**
 * Fault matrix, ingest rows: each part SIGKILLed while 5 `mqtt` npm clients publish QoS1 AND a
 * simulated MCU sends binary serial frames (socat pty) through the same agent's bridge, so one kill
 * lands in the middle of both. Every PUBACKed / acked reading must be in the hub exactly once, in
 * order per client and per MCU (the bridge's publisher keeps order across a leaf restart).
 */
const DEV = "fi";
const CLIENTS = 5;
const PER_CLIENT = 600;
const FRAMES = 1_500;

let fleet: Fleet;
let dir: TempDir;
let pty: PtyPair;
let mqttPort: number;
let spec: AgentSpec;

before(async () => {
  dir = await tempDir("canopy-fault-ingest-");
  pty = PtyPair.in(dir);
  await pty.start();
  mqttPort = await freePort();
  fleet = await Fleet.start();
  spec = { args: ["--bridge-mqtt", `127.0.0.1:${mqttPort}`, "--bridge-mqtt-anonymous", "--bridge-serial", `${pty.a}:921600`] };
  await fleet.startAgent(DEV, spec);
});
after(async () => {
  await fleet?.stop();
  await pty?.kill();
  await dir?.remove();
});

/** One simulated MCU sending `FRAMES` binary frames; it resends each until the bridge acks it. */
function serialRun(mcu: string): Load {
  const sim = new CanopyProcess(["sim", "mcu", "--id", mcu, "--serial", `${pty.b}:921600`, "--binary", "--rate", "300", "--count", String(FRAMES)]);
  const filter = `up.${DEV}.tlm.mcu.${mcu}.counter`;
  let inUp = 0;
  // Progress as the device sees it: frames stored in the leaf's UP (a fresh connection: the leaf's port changes when the agent restarts).
  // One poll at a time: while the leaf restarts, a poll waits for it (up to 30 s) instead of failing.
  let polling = false;
  const poll = setInterval(() => {
    if (polling) return;
    polling = true;
    fleet.withLeaf(DEV, (nc) => countIn(nc, "UP", filter)).then((n) => (inUp = n), () => {}).finally(() => (polling = false));
  }, 250);
  return {
    acked: () => inUp,
    done: sim.exited.then((code) => assert.equal(code, 0, `sim ${mcu}: ${sim.output.slice(-5).join("\n")}`)),
    async check() {
      assert.equal(simSummary(sim)["acked"], FRAMES);
      const hub = await fleet.hubConnection();
      await waitForCount(hub, "FLEET_UP_0", filter, FRAMES, 60_000);
      const values = (await readShard(hub, "FLEET_UP_0", filter)).map(Number);
      const c = countSource(values, Array.from({ length: FRAMES }, (_, k) => k + 1));
      if (c.orderViolations === 0) return c;
      // Where the order broke (shown by the failing deepEqual): already in the device's UP, or
      // only in the hub's copy of it; and the values around the first violation in both.
      const inUp = (await fleet.withLeaf(DEV, (nc) => readShard(nc, "UP", filter))).map(Number);
      const at = values.findIndex((v, i) => i > 0 && v <= (values[i - 1] as number));
      const upAt = inUp.indexOf(values[at] as number);
      // And what the bridge saw of this MCU's order: its serial counters, its warnings about the link.
      const serial = await fleet
        .withLeaf(DEV, (nc) => bridgeStats(nc))
        .then((st) => Object.fromEntries(Object.entries(st.counters).filter(([k]) => k.startsWith("serial."))), (err: unknown) => String(err));
      const warnings = fleet.agent(DEV).proc.output.filter((l) => l.includes(mcu) && /"level":(40|50)/.test(l)).slice(-10);
      return Object.assign(c, {
        upOrderViolations: countSource(inUp, []).orderViolations,
        hubAround: values.slice(Math.max(0, at - 3), at + 3),
        upAround: inUp.slice(Math.max(0, upAt - 3), upAt + 3),
        serial,
        warnings,
      });
    },
    async stop() {
      clearInterval(poll);
      await sim.stop();
    },
  };
}

for (const fault of FAULTS) {
  test(`${fault} SIGKILLed mid-ingest (${CLIENTS} MQTT QoS1 clients × ${PER_CLIENT} + serial binary ${FRAMES} frames): every acked reading in the hub once, in order per source`, async (t) => {
    const m = mqttLoad(fleet, { device: DEV, port: mqttPort, metric: fault, clients: CLIENTS, perClient: PER_CLIENT });
    const s = serialRun(`s${fault}`);
    t.after(async () => {
      await m.stop();
      await s.stop();
    });
    await reach(m.acked, (CLIENTS * PER_CLIENT) / 2, "half the MQTT messages PUBACKed");
    await reach(s.acked, FRAMES / 4, "a quarter of the serial frames in UP", 60_000);
    const serialAtKill = s.acked();
    const downMs = await inject(fleet, DEV, fault, spec);
    await Promise.all([m.done, s.done]);
    assert.equal(m.acked(), CLIENTS * PER_CLIENT);
    const mc = await m.check();
    const sc = await s.check();
    t.diagnostic(`${fault}: mqtt sent ${CLIENTS * PER_CLIENT} acked ${m.acked()} arrived ${mc.arrived} dup ${mc.duplicates} order ${mc.orderViolations} missing ${mc.missing}; ` +
      `serial sent ${FRAMES} acked ${FRAMES} (${serialAtKill} in UP at the kill) arrived ${sc.arrived} dup ${sc.duplicates} order ${sc.orderViolations} missing ${sc.missing}; back after ${downMs} ms`);
    assert.deepEqual(mc, { arrived: CLIENTS * PER_CLIENT, duplicates: 0, orderViolations: 0, missing: 0 });
    assert.deepEqual(sc, { arrived: FRAMES, duplicates: 0, orderViolations: 0, missing: 0 });
  });
}
