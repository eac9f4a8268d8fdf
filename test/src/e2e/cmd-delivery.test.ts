import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { sleep, waitFor } from "@canopy/protocol";
import type { Fleet } from "../harness/index.js";
import { CmdTool, TEST_HANDLERS, appendArgs, fileLines, isolatableFleet } from "./cmd-helpers.js";

let fleet: Fleet;
let cmd: CmdTool;
before(async () => {
  fleet = await isolatableFleet();
  cmd = await CmdTool.open(fleet);
});
after(async () => {
  await fleet?.stop();
});

test("a command sent while the agent is stopped runs exactly once after it starts (and not again after a restart)", async () => {
  await fleet.enroll("d1");
  const file = join(fleet.dir.path, "d1.lines");
  const id = await cmd.send(["--device", "d1", "test.append", ...appendArgs(file, "ran")]);
  assert.equal((await cmd.record(id))?.state, "queued");

  await fleet.startAgent("d1", { env: TEST_HANDLERS });
  const rec = await cmd.terminal(id);
  assert.equal(rec.state, "succeeded", JSON.stringify(rec));
  assert.ok(rec.times.queued && rec.times.running && rec.times.succeeded, JSON.stringify(rec.times));
  assert.deepEqual(await fileLines(file), ["ran"]);

  // A clean restart must not run it again; a later command proves the agent processed its queue.
  await fleet.agent("d1").proc.stop();
  await fleet.startAgent("d1", { env: TEST_HANDLERS, enroll: false });
  const ping = await cmd.send(["--device", "d1", "ping"]);
  assert.equal((await cmd.terminal(ping)).state, "succeeded");
  assert.deepEqual(await fileLines(file), ["ran"]);
});

test("--ttl 2s to a device offline for 5 s → expired, never executed", async () => {
  const agent = await fleet.startAgent("d2", { env: TEST_HANDLERS });
  const file = join(fleet.dir.path, "d2.lines");
  agent.link.cut();
  const id = await cmd.send(["--device", "d2", "test.append", ...appendArgs(file, "late"), "--ttl", "2s"]);
  await sleep(5_000); // the scenario: the device stays offline for 5 s
  agent.link.restore();
  // The gateway may conclude "expired" first (inferred); wait for the device's own verdict.
  const rec = await waitFor(async () => {
    const r = await cmd.record(id);
    return r && r.state !== "queued" && !r.inferred ? r : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200, what: "the device's verdict" });
  assert.equal(rec.state, "expired", JSON.stringify(rec));
  assert.match(rec.error?.message ?? "", /older than its TTL of 2000 ms when it reached the device/);
  assert.deepEqual(await fileLines(file), []);
});

test("cmd cancel of a queued command → cancelled, never executed; cancel of a running one fires its AbortSignal", async () => {
  await fleet.enroll("d3");
  const file = join(fleet.dir.path, "d3.lines");
  const id = await cmd.send(["--device", "d3", "test.append", ...appendArgs(file, "queued")]);
  const c = await fleet.cli(["cmd", "cancel", id]);
  assert.equal(c.code, 0, c.stderr);
  const st = await fleet.cli(["cmd", "status", id]);
  assert.match(c.stdout, /was queued\): it will not run/);
  assert.match(st.stdout, /cancelling \(the device drops it when it gets it; it will not run\)/);

  await fleet.startAgent("d3", { env: TEST_HANDLERS });
  const rec = await cmd.terminal(id);
  assert.equal(rec.state, "cancelled", JSON.stringify(rec));
  assert.deepEqual(await fileLines(file), []);
  const again = await fleet.cli(["cmd", "cancel", id]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already ended: cancelled/);

  const running = await cmd.send(["--device", "d3", "test.append", ...appendArgs(file, "running", 60_000)]);
  await waitFor(async () => (await fileLines(file)).length === 1, { timeoutMs: 30_000, what: "the handler to start" });
  const startedCancel = Date.now();
  assert.equal((await fleet.cli(["cmd", "cancel", running])).code, 0);
  const r2 = await cmd.terminal(running);
  assert.equal(r2.state, "cancelled", JSON.stringify(r2));
  assert.match(r2.error?.message ?? "", /while running/);
  assert.ok(Date.now() - startedCancel < 30_000, "cancel did not wait for the 60 s hold");
});

test("agent SIGKILLed while a command runs, then restarted → not executed a second time, ends interrupted; a re-runnable one runs again", async () => {
  await fleet.startAgent("d4", { env: TEST_HANDLERS });
  const file = join(fleet.dir.path, "d4.lines");
  const id = await cmd.send(["--device", "d4", "test.append", ...appendArgs(file, "once", 60_000)]);
  await waitFor(async () => (await fileLines(file)).length === 1, { timeoutMs: 30_000, what: "the handler to start" });

  const agent = fleet.agent("d4");
  agent.proc.killGroup("SIGKILL");
  await agent.proc.exited;
  await fleet.startAgent("d4", { env: TEST_HANDLERS, enroll: false });

  const rec = await cmd.terminal(id, 60_000);
  assert.equal(rec.state, "interrupted", JSON.stringify(rec));
  assert.match(rec.error?.message ?? "", /not run again/);
  assert.deepEqual(await fileLines(file), ["once"]);
  const ping = await cmd.send(["--device", "d4", "ping"]);
  assert.equal((await cmd.terminal(ping)).state, "succeeded");
  assert.deepEqual(await fileLines(file), ["once"]);

  // An idempotent handler interrupted the same way is run again and succeeds.
  const idem = join(fleet.dir.path, "d4.idem");
  const id2 = await cmd.send(["--device", "d4", "test.append-idempotent", ...appendArgs(idem, "again", 3_000)]);
  await waitFor(async () => (await fileLines(idem)).length === 1, { timeoutMs: 30_000, what: "the idempotent handler to start" });
  const agent2 = fleet.agent("d4");
  agent2.proc.killGroup("SIGKILL");
  await agent2.proc.exited;
  await fleet.startAgent("d4", { env: TEST_HANDLERS, enroll: false });
  const rec2 = await cmd.terminal(id2, 60_000);
  assert.equal(rec2.state, "succeeded", JSON.stringify(rec2));
  assert.deepEqual(await fileLines(idem), ["again", "again"]);
});

test("a quick command sends its terminal event alone; one still running after 200 ms sends running first; the record has every time either way", async () => {
  await fleet.startAgent("d5", { env: TEST_HANDLERS });
  const nc = await fleet.hubConnection();
  const states = new Map<string, string[]>();
  const sub = nc.subscribe("up.d5.evt.cmd.*", {
    callback: (_e, m) => {
      const ev = m.json<{ id: string; state: string }>();
      const seen = states.get(ev.id) ?? [];
      // The outbox may resend a message whose ack it missed: count each state once.
      if (!seen.includes(ev.state)) states.set(ev.id, [...seen, ev.state]);
    },
  });
  await nc.flush();
  try {
    const file = join(fleet.dir.path, "d5.lines");
    // One after the other: a command queued behind another for 200 ms would send `delivered` too.
    const ids: string[] = [];
    for (const args of [["ping"], ["test.append", ...appendArgs(file, "slow", 1_500)]]) {
      const id = await cmd.send(["--device", "d5", ...args]);
      const rec = await cmd.terminal(id);
      assert.equal(rec.state, "succeeded", JSON.stringify(rec));
      assert.ok(rec.times.queued && rec.times.running && rec.times.succeeded, JSON.stringify(rec.times));
      ids.push(id);
    }
    const [quick, slow] = ids as [string, string];
    await waitFor(() => (states.get(slow)?.includes("succeeded") && states.get(quick)?.includes("succeeded")) || undefined, { timeoutMs: 10_000, what: "both terminal events on the hub" });
    assert.deepEqual(states.get(quick), ["succeeded"], "the ping ended within 200 ms: no running event");
    assert.deepEqual(states.get(slow), ["running", "succeeded"], "held 1.5 s: running was published while it ran");
  } finally {
    sub.unsubscribe();
    await nc.close();
  }
});
