import { test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ServerSupervisor } from "@canopy/protocol";
import { createLogger } from "../logging.js";
import { DiskGuard } from "./guard.js";

/** A guard over the real tmp dir whose "free space floor" the test moves to make the disk look full or not. */
function guard(jsUp: () => boolean) {
  const restarts: number[] = [];
  const jsm = { getAccountInfo: async () => (jsUp() ? {} : Promise.reject(new Error("jetstream not enabled"))) } as unknown as JetStreamManager;
  const leaf = { restart: () => void restarts.push(Date.now()) } as unknown as ServerSupervisor;
  const opts = { minFreeBytes: Number.MAX_SAFE_INTEGER, intervalMs: 10, restartEveryMs: 0 };
  const changes: boolean[] = [];
  const g = new DiskGuard(tmpdir(), jsm, leaf, createLogger("silent"), opts);
  g.onState = (s, changed) => void (changed && changes.push(s.full));
  return { g, opts, restarts, changes };
}

test("disk guard: full while low on space; once there is room the leaf is restarted once (a stream that met ENOSPC needs it), then not full", async () => {
  const { g, opts, restarts, changes } = guard(() => true);
  let s = await g.check(1_000);
  assert.equal(s.full, true);
  assert.equal(s.reason, "low-space");
  assert.equal(restarts.length, 0, "no restart while there is no room");
  opts.minFreeBytes = 1; // room again
  s = await g.check(2_000);
  assert.equal(restarts.length, 1, "restarted once there is room");
  assert.equal(s.full, false);
  await g.check(3_000);
  assert.equal(restarts.length, 1, "only once per episode");
  assert.deepEqual(changes, [true, false], "told on each flip (the agent reports at once)");
});

test("disk guard: JetStream down with room → one restart; a slow store recovery after it is 'recovering', not another restart", async () => {
  let up = false;
  const { g, opts, restarts } = guard(() => up);
  opts.minFreeBytes = 1;
  assert.equal((await g.check(1_000)).full, false, "one failed answer is not down");
  const s = await g.check(2_000);
  assert.equal(restarts.length, 1);
  assert.equal(s.reason, "recovering");
  for (let t = 3_000; t < 10_000; t += 1_000) assert.equal((await g.check(t)).reason, "recovering");
  assert.equal(restarts.length, 1, "no restart loop while the leaf recovers its store");
  up = true;
  assert.equal((await g.check(11_000)).full, false);
});
