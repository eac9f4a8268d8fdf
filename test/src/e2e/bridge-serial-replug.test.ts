import { test } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { bridgeStats, Cleanup, countUp, leafEnv, ptyPair, readUp, simSummary, startBridge, startSim } from "./bridge-support.js";

const FRAMES = 5000;

test("serial: 5,000 binary frames while the pty is killed and recreated twice → every acked frame in UP exactly once", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-serial-");
  const pty = await ptyPair(cleanup, dir);
  const bridge = await startBridge(cleanup, ["--device", "d1", "--leaf", leaf.server.url, "--serial", `${pty.a}:921600`, "--data", `${dir.path}/data`]);
  // 500 frames/s: ~10 s of traffic, so both unplugs land mid-stream.
  const sim = startSim(cleanup, ["--id", "m1", "--serial", `${pty.b}:921600`, "--binary", "--rate", "500", "--count", String(FRAMES)]);

  const filter = "up.d1.tlm.mcu.m1.counter";
  const lost = (): number => bridge.output.filter((l) => l.includes("serial port lost")).length;
  for (const [i, at] of [1500, 3000].entries()) {
    await waitFor(async () => (await countUp(leaf, filter)) >= at, { timeoutMs: 30_000, what: `${at} frames in UP` }).catch(async (err: Error) => {
      const counters = Object.fromEntries(Object.entries((await bridgeStats(leaf.nc)).counters).filter(([k]) => k.startsWith("serial.")));
      throw new Error(`${err.message}; in UP ${await countUp(leaf, filter)}; bridge ${JSON.stringify(counters)}\nsim: ${sim.output.slice(-8).join("\n")}\nbridge: ${bridge.output.slice(-30).join("\n")}`);
    });
    await pty.kill(); // unplug: both pty ends vanish, frames in flight are cut
    await waitFor(() => lost() > i, { timeoutMs: 10_000, what: "the bridge to notice the unplug" }).catch((err: Error) => {
      throw new Error(`${err.message}\nbridge: ${bridge.output.slice(-12).join("\n")}\nsim: ${sim.output.slice(-5).join("\n")}`);
    });
    await pty.start(); // replug: same paths, new ptys
  }
  const code = await Promise.race([sim.exited, new Promise((r) => setTimeout(r, 60_000, "timeout").unref())]);
  assert.equal(code, 0, `sim: ${sim.output.slice(-10).join("\n")}\nbridge: ${bridge.output.slice(-20).join("\n")}`);
  const summary = simSummary(sim);
  assert.equal(summary["acked"], FRAMES, JSON.stringify(summary));
  assert.ok((summary["retransmits"] ?? 0) > 0, "the unplugs should have forced resends");

  const msgs = await readUp(leaf, filter);
  const values = msgs.map((m) => Number(m.data));
  const unique = new Set(values);
  assert.equal(unique.size, values.length, "a reading was stored twice");
  for (let k = 1; k <= FRAMES; k++) assert.ok(unique.has(k), `acked reading ${k} missing from UP`);
  assert.equal(values.length, FRAMES);

  const stats = await bridgeStats(leaf.nc);
  assert.ok((stats.counters["serial.disconnects"] ?? 0) >= 2, JSON.stringify(stats.counters));
  const lines = bridge.output.filter((l) => l.includes("serial port lost")).length;
  assert.ok(lines >= 2);
  // online → offline (unplug) → online … is in UP as events.
  assert.ok((await countUp(leaf, "up.d1.evt.mcu.m1.offline")) >= 2);
  assert.ok((await countUp(leaf, "up.d1.evt.mcu.m1.online")) >= 3);
});
