import { test } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { runQuery } from "@canopy/gateway/query/index";
import { CanopyProcess, Fleet } from "../harness/index.js";

// A long-lived connection answers "who is addressed, who is online" from its in-memory PresenceView:
// it must follow enrolments and presence changes as they happen, not only what it read first.

test("queries on one connection follow the fleet live: new devices are expected, stopped ones listed silent", async (t) => {
  const fleet = await Fleet.start();
  const sims: CanopyProcess[] = [];
  t.after(async () => {
    await Promise.allSettled(sims.map((s) => s.stop()));
    await fleet.stop();
  });
  const sim = (first: number, n: number): Promise<void> => {
    const p = new CanopyProcess(["sim", "fleet", "--devices", String(n), "--first", String(first), "--server", fleet.hub.client, "--heartbeat", "30s"], fleet.env);
    sims.push(p);
    return p.waitForOutput(/"event":"sim-ready"/, 120_000).then(() => undefined);
  };
  await sim(0, 100);
  const nc = await fleet.hubConnection();

  const q1 = await runQuery(nc, { expr: "true", timeoutMs: 20_000 });
  assert.equal(q1.summary.targeted, 100, JSON.stringify(q1.summary));
  assert.equal(q1.summary.expected, 100);
  assert.equal(q1.summary.answered, 100);
  assert.equal(q1.summary.timedOut, false);

  // 50 more devices enrol and report presence: the same connection's next query waits for all 150.
  await sim(100, 50);
  await waitFor(async () => (await runQuery(nc, { expr: "true", timeoutMs: 20_000 })).summary.expected === 150, { timeoutMs: 20_000, what: "150 expected" });
  const q2 = await runQuery(nc, { expr: "true", timeoutMs: 20_000 });
  assert.equal(q2.summary.targeted, 150);
  assert.equal(q2.summary.answered, 150);
  assert.equal(q2.summary.timedOut, false);

  // The second simulator stops (its devices write `stopping`): they are no longer expected, and the
  // query lists exactly those 50 as silent, not expected, with the age of their facts.
  await sims[1]?.stop();
  await waitFor(async () => (await runQuery(nc, { expr: "true", timeoutMs: 5_000 })).summary.expected === 100, { timeoutMs: 30_000, what: "100 expected" });
  const q3 = await runQuery(nc, { expr: "true", timeoutMs: 5_000 });
  assert.equal(q3.summary.targeted, 150);
  assert.equal(q3.summary.answered, 100);
  assert.equal(q3.summary.timedOut, false);
  assert.equal(q3.silent.length, 50);
  assert.ok(q3.silent.every((s) => !s.expected && s.factsAgeMs !== undefined && /^sim-01[0-4]\d$/.test(s.device)), JSON.stringify(q3.silent.slice(0, 3)));
});
