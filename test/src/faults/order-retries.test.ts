import { test } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { freePort } from "../harness/index.js";
import { Cleanup, countUp, leafEnv, ptyPair, readUp, simSummary, startBridge, startSim } from "../e2e/bridge-support.js";
import { countSource, total } from "./matrix.js";

const SERIAL = 2;
const MQTT = 3;
const COUNT = 2_500;
const KILLS = 3;

test(`leaf nats-server SIGKILLed ${KILLS}× under full-speed ingest (${SERIAL} serial + ${MQTT} MQTT MCUs): each MCU's readings strictly increasing in UP, none lost or doubled`, async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-fault-order-");
  const ptys = await Promise.all(Array.from({ length: SERIAL }, (_, i) => ptyPair(cleanup, dir, `tty${i}`)));
  const mqttPort = await freePort();
  await startBridge(cleanup, [
    "--device", "d1", "--leaf", leaf.server.url, "--data", `${dir.path}/data`, "--mqtt", `127.0.0.1:${mqttPort}`, "--mqtt-anonymous",
    ...ptys.flatMap((p) => ["--serial", `${p.a}:921600`]),
  ]);
  // Rate 0: as fast as acks allow, so several batches are in flight whenever the leaf dies.
  const sims = [
    ...ptys.map((p, i) => ({ id: `s${i}`, proc: startSim(cleanup, ["--id", `s${i}`, "--serial", `${p.b}:921600`, "--binary", "--rate", "0", "--count", String(COUNT)]) })),
    ...Array.from({ length: MQTT }, (_, i) => ({ id: `q${i}`, proc: startSim(cleanup, ["--id", `q${i}`, "--mqtt", `127.0.0.1:${mqttPort}`, "--rate", "0", "--count", String(COUNT)]) })),
  ];
  const filter = "up.d1.tlm.mcu.*.counter";
  for (let k = 1; k <= KILLS; k++) {
    const at = Math.floor((k * sims.length * COUNT) / (KILLS + 2));
    await waitFor(async () => (await countUp(leaf, filter).catch(() => 0)) >= at, { timeoutMs: 120_000, intervalMs: 20, what: `${at} readings in UP` });
    await leaf.server.kill();
    await leaf.server.start();
  }
  for (const s of sims) {
    const code = await Promise.race([s.proc.exited, new Promise((r) => setTimeout(r, 120_000, "timeout").unref())]);
    assert.equal(code, 0, `sim ${s.id}: ${s.proc.output.slice(-5).join("\n")}`);
    assert.equal(simSummary(s.proc)["acked"], COUNT, `sim ${s.id} acked`);
  }
  const counts = [];
  for (const s of sims) {
    const msgs = await readUp(leaf, `up.d1.tlm.mcu.${s.id}.counter`);
    const values = msgs.map((m) => Number(m.data));
    const firstAt = new Map<number, number>();
    msgs.forEach((m, i) => {
      const v = Number(m.data);
      const j = firstAt.get(v);
      if (j === undefined) firstAt.set(v, i);
      else t.diagnostic(`${s.id} value ${v} twice: ${JSON.stringify([msgs[j], m])}`);
    });
    counts.push(countSource(values, Array.from({ length: COUNT }, (_, k) => k + 1)));
    t.diagnostic(`${s.id}: ${JSON.stringify(counts[counts.length - 1])}`);
  }
  const sum = total(counts);
  t.diagnostic(`${sims.length} MCUs × ${COUNT} acked, ${KILLS} leaf kills: in UP ${sum.arrived}, duplicates ${sum.duplicates}, order violations ${sum.orderViolations}, missing ${sum.missing}`);
  assert.deepEqual(sum, { arrived: sims.length * COUNT, duplicates: 0, orderViolations: 0, missing: 0 });
});
