import { test } from "node:test";
import assert from "node:assert/strict";
import { isValidId, type CommandEvent, type CommandRecord } from "@canopy/protocol";
import { applyEvent, inferExpiry, recordFromEvent } from "./state.js";
import { newCommandId } from "./store.js";

const rec: CommandRecord = {
  id: "c1",
  device: "d1",
  name: "ping",
  args: {},
  createdAt: 1_000,
  ttlMs: 60_000,
  state: "queued",
  times: { queued: 1_000 },
  updatedAt: 1_000,
};
const ev = (e: Partial<CommandEvent>): CommandEvent => ({ id: "c1", device: "d1", state: "running", at: 2_000, ...e });

test("states move forward with a timestamp each; the result lands with the terminal state", () => {
  const running = applyEvent(rec, ev({ state: "running", deliveredAt: 1_500, startedAt: 1_600 }), 9);
  assert.equal(running?.state, "running");
  assert.deepEqual(running?.times, { queued: 1_000, delivered: 1_500, running: 1_600 });
  const done = applyEvent(running!, ev({ state: "succeeded", finishedAt: 1_700, at: 1_700, result: { pong: true } }), 10);
  assert.equal(done?.state, "succeeded");
  assert.equal(done?.times.succeeded, 1_700);
  assert.deepEqual(done?.result, { pong: true });
  assert.equal(done?.updatedAt, 10);
});

test("late or repeated events never move a command back or change its outcome", () => {
  const done = applyEvent(rec, ev({ state: "failed", at: 3_000, error: { code: "TIMEOUT", message: "t" } }))!;
  assert.equal(applyEvent(done, ev({ state: "running", startedAt: 2_500 }))?.state, "failed", "late running only adds its time");
  assert.equal(applyEvent(done, ev({ state: "failed", at: 3_000, error: { code: "TIMEOUT", message: "t" }, replay: true })), undefined);
  const other = applyEvent(done, ev({ state: "succeeded", at: 4_000, result: 1 }));
  assert.equal(other?.state, "failed");
  assert.equal(other?.result, undefined);
});

test("an event for an unknown command still makes a record", () => {
  const r = recordFromEvent(ev({ state: "expired", at: 5_000, deliveredAt: 4_900 }), 6_000);
  assert.equal(r.state, "expired");
  assert.equal(r.name, "unknown");
  assert.equal(r.times.expired, 5_000);
});

test("command ids are valid ids and sort by creation time", () => {
  const a = newCommandId(1_700_000_000_000);
  const b = newCommandId(1_700_000_000_001);
  assert.ok(isValidId(a) && isValidId(b));
  assert.ok(a < b);
  assert.notEqual(newCommandId(5), newCommandId(5));
});

test("queued past its TTL → the gateway concludes expired; a later device report still wins", () => {
  assert.equal(inferExpiry(rec, 60_000), undefined);
  const expired = inferExpiry(rec, 61_001)!;
  assert.equal(expired.state, "expired");
  assert.equal(expired.inferred, true);
  assert.equal(inferExpiry({ ...rec, state: "delivered" }, 99_999), undefined);
  const ran = applyEvent(expired, ev({ state: "succeeded", at: 62_000, result: "ok" }))!;
  assert.equal(ran.state, "succeeded");
  assert.equal(ran.inferred, undefined);
  assert.equal(ran.error, undefined);
  assert.equal(ran.times.expired, undefined);
});
