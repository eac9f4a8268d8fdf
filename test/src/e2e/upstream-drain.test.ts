import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { Fleet, checkSequence, publishSeries, readShard, waitForCount } from "../harness/index.js";

// Store and forward, acceptance 1 and 2: in order, exactly once, across a hub crash.
let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start();
  await fleet.startAgent("d1");
});
after(async () => {
  await fleet?.stop();
});

const SHARD = "FLEET_UP_0";
const FILTER = "up.d1.tlm.series";
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test("10,000 messages published on a leaf reach the hub in order, no duplicates", async () => {
  const leaf = await fleet.leafConnection("d1");
  const acked = await publishSeries(leaf, { device: "d1", subject: FILTER, count: 10_000 });
  assert.equal(acked.size, 10_000);
  const hub = await fleet.hubConnection();
  await waitForCount(hub, SHARD, FILTER, 10_000, 60_000);
  assert.equal(checkSequence(await readShard(hub, SHARD, FILTER), range(0, 10_000)), undefined);
});

test("hub SIGKILLed, 20,000 more published and acked on the leaf, hub restarted → 30,000, in order, no duplicates", async () => {
  const leaf = await fleet.leafConnection("d1");
  const restart = fleet.restartHub({
    kill: true,
    beforeStart: async () => {
      const acked = await publishSeries(leaf, { device: "d1", subject: FILTER, from: 10_000, count: 20_000 });
      assert.equal(acked.size, 20_000, "every publish acked by the leaf while the hub was down");
    },
  });
  await restart;
  const restartedAt = Date.now();
  const hub = await fleet.hubConnection();
  await waitForCount(hub, SHARD, FILTER, 30_000, 120_000);
  const drainedMs = Date.now() - restartedAt;
  console.log(`# hub restart → 30,000 drained in ${drainedMs} ms`);
  assert.equal(checkSequence(await readShard(hub, SHARD, FILTER), range(0, 30_000)), undefined);
});
