import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "@canopy/protocol";
import { Fleet, publishSeries, readShard, waitForCount } from "../harness/index.js";
import { VolatileFs, requireVolatileFs, type PowerCutStats } from "./volatile-fs.js";

// Issue 10, "Power cut": what the leaf acked must survive a power cut. The leaf's store dir is a FUSE
// layer (test/native/volatilefs.py) that undoes every write not yet fsynced when the power is cut;
// the whole agent process group (agent, leaf nats-server, bridge) is SIGKILLed first, as the power
// takes them. The device then boots again on what the disk kept, and the hub gets what survived.
const ONLINE = 300;
const OFFLINE = 1_500;
const CUT_AT = 1_000;

interface Outcome {
  acked: Map<number, number>;
  cutAt: number;
  stats: PowerCutStats;
  /** Acked indices the device no longer has after the reboot. */
  lost: number[];
  inHub: string[];
  fleet: Fleet;
}

/**
 * One run: a device with `syncInterval`, ONLINE messages forwarded, then the link cut and OFFLINE
 * published (window 20), power cut after CUT_AT of them were acked; reboot, link back.
 */
async function powerCut(device: string, syncInterval: string, cleanups: Array<() => Promise<void>>): Promise<Outcome> {
  const fleet = await Fleet.start();
  cleanups.push(() => fleet.stop());
  const dataDir = join(fleet.dir.path, "devices", device);
  const store = join(dataDir, "leaf");
  const disk = join(fleet.dir.path, `${device}-disk`);
  let fs = await VolatileFs.mount(disk, store);
  cleanups.push(() => fs.unmount());
  const config = join(fleet.dir.path, `${device}.json`);
  await mkdir(dataDir, { recursive: true });
  await writeFile(config, JSON.stringify({ leaf: { syncInterval } }));
  const args = ["--config", config];

  const agent = await fleet.startAgent(device, { args });
  cleanups.push(() => agent.proc.stop());
  const subject = `up.${device}.tlm.series`;
  const leaf = await fleet.leafConnection(device);
  const hub = await fleet.hubConnection();
  const online = await publishSeries(leaf, { device, subject, count: ONLINE, window: 20 });
  assert.equal(online.size, ONLINE);
  await waitForCount(hub, "FLEET_UP_0", subject, ONLINE, 60_000);

  agent.link.cut();
  const acked = new Map<number, number>();
  for (const i of online) acked.set(i, 0);
  const publishing = publishSeries(leaf, { device, subject, from: ONLINE, count: OFFLINE, window: 20, onAck: (i) => acked.set(i, performance.now()) });
  await waitFor(() => acked.size >= ONLINE + CUT_AT, { timeoutMs: 60_000, intervalMs: 1, what: `${CUT_AT} acked offline` });
  // Power off: every process of the device at once, then the disk loses what was not synced.
  agent.proc.killGroup("SIGKILL");
  const cutAt = performance.now();
  await agent.proc.exited;
  const stats = await fs.cut();
  await leaf.close().catch(() => {});
  await publishing;
  for (const [i, at] of acked) if (at > cutAt) acked.delete(i); // acks seen after the cut were not "before"

  // Boot: same disk, a fresh (empty) volatile layer, the agent with its data dir.
  fs = await VolatileFs.mount(disk, store);
  const rebooted = await fleet.startAgent(device, { enroll: false, args });
  const leaf2 = await fleet.leafConnection(device);
  const up = (await (await jetstreamManager(leaf2)).streams.info("UP", { subjects_filter: subject })).state;
  const onDevice = up.subjects?.[subject] ?? 0;
  rebooted.link.restore();
  // UP keeps everything (the hub had the first ONLINE already): the hub ends with what the device kept.
  await waitForCount(hub, "FLEET_UP_0", subject, onDevice, 90_000);
  const inHub = await readShard(hub, "FLEET_UP_0", subject);
  const have = new Set(inHub.map(Number));
  const lost = [...acked.keys()].filter((i) => !have.has(i)).sort((a, b) => a - b);
  return { acked, cutAt, stats, lost, inHub, fleet };
}

test("power cut with sync_interval always: every message the leaf acked survives, reaches the hub once, in order", async (t) => {
  requireVolatileFs();
  const cleanups: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });
  const o = await powerCut("pca", "always", cleanups);
  const values = o.inHub.map(Number);
  assert.equal(new Set(values).size, values.length, "no duplicates in the hub");
  for (let k = 1; k < values.length; k++) assert.ok(values[k]! > values[k - 1]!, `in order at ${k}: ${values[k - 1]} then ${values[k]}`);
  assert.deepEqual(o.lost, [], "every acked message survived the power cut");
  assert.ok(o.stats.syncs > 0, "the leaf fsynced");
  t.diagnostic(
    `sync always: ${o.acked.size} acked before the cut (${o.acked.size - ONLINE} offline), ${o.inHub.length} in the hub ` +
      `(${o.inHub.length - o.acked.size} more that were stored but whose ack never arrived), 0 lost; ` +
      `layer: ${o.stats.writes} writes, ${o.stats.syncs} fsyncs, ${o.stats.dropped_writes} unsynced writes (${o.stats.dropped_bytes} B) undone`,
  );
});

test("power cut with the default sync_interval 100ms: only the last moments' acks can be lost (the layer does drop unsynced writes)", async (t) => {
  requireVolatileFs();
  const cleanups: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });
  const o = await powerCut("pcd", "100ms", cleanups);
  const values = o.inHub.map(Number);
  assert.equal(new Set(values).size, values.length, "no duplicates in the hub");
  assert.ok(o.stats.dropped_writes > 0, "unsynced writes existed at the cut and were undone");
  // Lost = a window at the end: every message acked more than WINDOW_MS before the cut is there.
  const WINDOW_MS = 1_000;
  const oldestLostAge = o.lost.length ? Math.max(...o.lost.map((i) => o.cutAt - (o.acked.get(i) ?? 0))) : 0;
  assert.ok(oldestLostAge <= WINDOW_MS, `lost only acks of the last ${WINDOW_MS} ms (oldest lost was acked ${oldestLostAge.toFixed(0)} ms before the cut)`);
  t.diagnostic(
    `sync 100ms: ${o.acked.size} acked before the cut, ${o.lost.length} lost (acked at most ${oldestLostAge.toFixed(0)} ms before the cut); ` +
      `layer: ${o.stats.writes} writes, ${o.stats.syncs} fsyncs, ${o.stats.dropped_writes} unsynced writes (${o.stats.dropped_bytes} B) undone`,
  );
});
