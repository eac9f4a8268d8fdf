import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Fleet, freePort, publishSeries, readShard, waitForCount } from "../harness/index.js";
import { countSource, mqttLoad, reach } from "./matrix.js";

/**
 * The device's hub link cut (the harness's LinkProxy; the hub advertises a dead leafnode address,
 * so the leaf cannot reconnect around the proxy) while an app publishes with its own msg ids and 5
 * MQTT clients publish through the bridge: once for longer than UP's duplicate window (shortened to
 * 3 s for the test), once flapping 10 times within a minute. Every acked message must reach the hub
 * exactly once, in order per source.
 */
const DEV = "ln";
const WINDOW_MS = 3_000;
let fleet: Fleet;
let mqttPort: number;

before(async () => {
  fleet = await Fleet.start();
  mqttPort = await freePort();
  const config = join(fleet.dir.path, "agent-ln.json");
  await writeFile(config, JSON.stringify({ up: { duplicateWindow: `${WINDOW_MS / 1000}s` } }));
  await fleet.startAgent(DEV, { args: ["--config", config, "--bridge-mqtt", `127.0.0.1:${mqttPort}`, "--bridge-mqtt-anonymous"] });
});
after(async () => {
  await fleet?.stop();
});

/**
 * App messages `0..n-1` on `subject` in the hub, counted against the acked ones. Order is the
 * device's: the app keeps 10–20 publishes outstanding and retries a failed one, so its leaf's UP
 * stream may itself hold them out of index order (`appOrder`, for the diagnostic); what Canopy
 * promises is that the hub holds them in the order UP stored them (`orderViolations`: positions
 * where the hub's order differs from UP's).
 */
async function appCount(subject: string, acked: Set<number>): Promise<ReturnType<typeof countSource> & { appOrder: number }> {
  const hub = await fleet.hubConnection();
  await waitForCount(hub, "FLEET_UP_0", subject, acked.size, 90_000);
  const inHub = (await readShard(hub, "FLEET_UP_0", subject)).map(Number);
  const inUp = (await fleet.withLeaf(DEV, (nc) => readShard(nc, "UP", subject))).map(Number);
  const c = countSource(inHub, acked);
  const orderViolations = inHub.filter((v, i) => v !== inUp[i]).length + Math.max(0, inUp.length - inHub.length);
  return { ...c, orderViolations, appOrder: countSource(inUp, []).orderViolations };
}

test(`link cut for ${(4 * WINDOW_MS) / 1000} s (4× UP's ${WINDOW_MS / 1000} s duplicate window) during app + MQTT ingest: every acked message in the hub once, in order`, async (t) => {
  const subject = `up.${DEV}.tlm.cut`;
  const leaf = await fleet.leafConnection(DEV);
  const m = mqttLoad(fleet, { device: DEV, port: mqttPort, metric: "cut", clients: 5, perClient: 400 });
  t.after(() => m.stop());
  let appAcked = 0;
  const app = publishSeries(leaf, { device: DEV, subject, count: 3_000, window: 20, retryUntil: Date.now() + 120_000, onAck: () => appAcked++ });
  await reach(() => appAcked, 500, "500 app messages acked");
  const link = fleet.agent(DEV).link;
  link.cut();
  const atCut = appAcked;
  await new Promise((r) => setTimeout(r, 4 * WINDOW_MS));
  const duringCut = appAcked - atCut;
  link.restore();
  const acked = await app;
  await m.done;
  const a = await appCount(subject, acked);
  const q = await m.check();
  t.diagnostic(`cut ${4 * WINDOW_MS} ms: app acked ${acked.size}/3000 (${duringCut} while cut) → hub ${a.arrived}, dup ${a.duplicates}, order vs UP ${a.orderViolations} (app's own ${a.appOrder}), missing ${a.missing}; mqtt acked ${m.acked()}/2000 → hub ${q.arrived}, dup ${q.duplicates}, order ${q.orderViolations}, missing ${q.missing}`);
  assert.ok(duringCut > 0, "the app kept publishing into UP while the link was cut");
  assert.equal(acked.size, 3_000);
  assert.deepEqual({ ...a, appOrder: 0 }, { arrived: 3_000, duplicates: 0, orderViolations: 0, missing: 0, appOrder: 0 });
  assert.deepEqual(q, { arrived: 2_000, duplicates: 0, orderViolations: 0, missing: 0 });
});

test("flapping link: 10 cuts (1 s each, 2 s apart) within a minute during paced app + MQTT ingest: every acked message in the hub once, in order", async (t) => {
  const subject = `up.${DEV}.tlm.flap`;
  const leaf = await fleet.leafConnection(DEV);
  const m = mqttLoad(fleet, { device: DEV, port: mqttPort, metric: "flap", clients: 5, perClient: 400 });
  t.after(() => m.stop());
  const acked = new Set<number>();
  let flapping = true;
  // The app publishes 50 messages every 250 ms for as long as the link flaps.
  const app = (async () => {
    for (let from = 0; flapping; from += 50) {
      const got = await publishSeries(leaf, { device: DEV, subject, from, count: 50, window: 10, retryUntil: Date.now() + 60_000 });
      for (const i of got) acked.add(i);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const link = fleet.agent(DEV).link;
  const t0 = Date.now();
  for (let k = 0; k < 10; k++) {
    await new Promise((r) => setTimeout(r, 2_000));
    link.cut();
    await new Promise((r) => setTimeout(r, 1_000));
    link.restore();
  }
  const flapMs = Date.now() - t0;
  flapping = false;
  await app;
  await m.done;
  const a = await appCount(subject, acked);
  const q = await m.check();
  t.diagnostic(`10 cuts in ${flapMs} ms: app acked ${acked.size} → hub ${a.arrived}, dup ${a.duplicates}, order vs UP ${a.orderViolations} (app's own ${a.appOrder}), missing ${a.missing}; mqtt acked ${m.acked()}/2000 → hub ${q.arrived}, dup ${q.duplicates}, order ${q.orderViolations}, missing ${q.missing}`);
  assert.ok(flapMs <= 60_000, `10 cuts took ${flapMs} ms`);
  assert.deepEqual({ ...a, appOrder: 0 }, { arrived: acked.size, duplicates: 0, orderViolations: 0, missing: 0, appOrder: 0 });
  assert.deepEqual(q, { arrived: 2_000, duplicates: 0, orderViolations: 0, missing: 0 });
});
