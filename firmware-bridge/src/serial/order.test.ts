import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBridgeStore } from "../registry/store.js";
import { FrameOrder } from "./order.js";

test("FrameOrder: frames are taken in seq order; early ones wait for the resend of the gap; resends behind pass to dedup", () => {
  const o = new FrameOrder(undefined, "m1");
  o.hello(7, 10);
  assert.equal(o.check(11), "take");
  assert.equal(o.check(13, 0), "early", "12 is missing");
  assert.equal(o.check(14, 1), "early");
  assert.equal(o.check(11), "resend", "behind: a resend of a frame taken");
  assert.equal(o.check(12), "take");
  assert.equal(o.check(13), "take");
  // A hello in the middle of the stream (on WHO) spends a seq that never carries data.
  o.hello(7, 14);
  assert.equal(o.check(15), "take");
  // 16-bit wrap.
  o.hello(8, 0xfffe);
  assert.equal(o.check(0xffff), "take");
  assert.equal(o.check(0), "take");
  assert.equal(o.check(1), "take");
});

test("FrameOrder: a gap no resend fills within 10 s is given up; the cursor survives a bridge restart for the same boot only", async (t) => {
  const gaveUp: number[][] = [];
  const o = new FrameOrder(undefined, "m1", (expected, taken, waited) => gaveUp.push([expected, taken, waited]));
  o.hello(1, 0);
  assert.equal(o.check(5, 1_000), "early");
  assert.equal(o.check(5, 10_999), "early");
  assert.deepEqual(gaveUp, []);
  assert.equal(o.check(5, 11_000), "take", "given up on 1..4");
  assert.deepEqual(gaveUp, [[1, 5, 10_000]], "reported once, with what was expected and what was taken");
  assert.equal(o.check(6, 11_001), "take");
  assert.equal(gaveUp.length, 1);

  const dir = await mkdtemp(join(tmpdir(), "canopy-order-"));
  const store = openBridgeStore(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const before = new FrameOrder(store.meta, "m2");
  before.hello(42, 100);
  assert.equal(before.check(101), "take");
  assert.equal(before.check(102), "take");
  before.settled(101);
  before.settled(102);
  await store.meta.flushed;
  const after = new FrameOrder(store.meta, "m2");
  after.hello(42, 140); // the MCU says hello again to the restarted bridge, frames 103.. still unacked
  assert.equal(after.check(104, 0), "early");
  assert.equal(after.check(103), "take");
  assert.equal(after.check(104), "take");
  const rebooted = new FrameOrder(store.meta, "m2");
  rebooted.hello(43, 1);
  assert.equal(rebooted.check(2), "take", "a new boot starts after its hello");
});

test("FrameOrder: the persisted cursor moves only past settled frames, in take order (a frame taken but not stored when the bridge died is expected again)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "canopy-order-"));
  const store = openBridgeStore(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const before = new FrameOrder(store.meta, "m3");
  before.hello(9, 0);
  for (const seq of [1, 2, 3, 4]) assert.equal(before.check(seq), "take");
  before.settled(1);
  before.settled(3); // stored out of order: the cursor may not pass 2
  before.settled(77); // not taken: ignored
  await store.meta.flushed;
  const after = new FrameOrder(store.meta, "m3");
  after.hello(9, 30);
  assert.equal(after.check(5, 0), "early", "a later frame left in the pty waits");
  assert.equal(after.check(2), "take", "the MCU's resend of 2 is taken first");
  assert.equal(after.check(3), "take", "3 was stored: its resend is deduplicated by the publisher, in order");
  assert.equal(after.check(4), "take");
  assert.equal(after.check(5), "take");
  // Everything settled: the cursor is past 5 (and past the hello at 30 once reached).
  for (const seq of [2, 3, 4, 5]) after.settled(seq);
  await store.meta.flushed;
  const again = new FrameOrder(store.meta, "m3");
  again.hello(9, 31);
  assert.equal(again.check(6), "take");
});
