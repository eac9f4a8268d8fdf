import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import { Fleet, skewedClockEnv } from "../harness/index.js";
import { CmdTool, TEST_HANDLERS, appendArgs, fileLines } from "../e2e/cmd-helpers.js";

// Engine issue, "Commands": TTL must not depend on an unsynced device clock (a Pi has no RTC).
let fleet: Fleet;
let cmd: CmdTool;
before(async () => {
  fleet = await Fleet.start();
  cmd = await CmdTool.open(fleet);
});
after(async () => {
  await fleet?.stop();
});

test("device clock 1 h behind: a --ttl 5s command that waited past its TTL is expired, never run", async () => {
  const env = { ...TEST_HANDLERS, ...skewedClockEnv("-1h") };
  const a = await fleet.startAgent("behind", { env });
  await a.proc.stop();
  const file = join(fleet.dir.path, "behind.lines");
  const id = await cmd.send(["--device", "behind", "test.append", "--ttl", "5s", ...appendArgs(file, "ran")]);
  // The gateway concludes `expired` once the TTL has passed on the hub's clock.
  await waitFor(async () => (await cmd.record(id))?.state === "expired", { timeoutMs: 60_000, what: "the gateway to conclude expired (sweeps every 30 s)" });
  await fleet.startAgent("behind", { env, enroll: false });
  // The device's own report must agree (not inferred) and the handler never ran.
  const rec = await waitFor(async () => {
    const r = await cmd.record(id);
    return r && r.state === "expired" && !r.inferred ? r : undefined;
  }, { timeoutMs: 45_000, what: "the device's own expired report" });
  assert.match(rec.error?.message ?? "", /TTL/);
  assert.deepEqual(await fileLines(file), []);
  // A fresh command still runs, and its times are in hub time: queued ≤ running ≤ succeeded.
  const ok = await cmd.send(["--device", "behind", "ping", "--ttl", "30s"]);
  const r2 = await cmd.terminal(ok);
  assert.equal(r2.state, "succeeded", JSON.stringify(r2));
  const t = r2.times;
  assert.ok((t.queued ?? 0) <= (t.running ?? 0) + 1_000 && (t.running ?? 0) <= (t.succeeded ?? 0), JSON.stringify(t));
  assert.ok(Math.abs((t.succeeded ?? 0) - Date.now()) < 60_000, `succeeded at hub time, not 1 h off: ${JSON.stringify(t)}`);
});

test("device clock 1 h ahead: a --ttl 30m command runs (it does not expire at once); skew is reported", async () => {
  const env = { ...TEST_HANDLERS, ...skewedClockEnv("+1h") };
  await fleet.startAgent("ahead", { env });
  const file = join(fleet.dir.path, "ahead.lines");
  const id = await cmd.send(["--device", "ahead", "test.append", "--ttl", "30m", ...appendArgs(file, "ran")]);
  const rec = await cmd.terminal(id);
  assert.equal(rec.state, "succeeded", JSON.stringify(rec));
  assert.deepEqual(await fileLines(file), ["ran"]);
  const devices = await fleet.cli(["devices", "--json"]);
  const row = (JSON.parse(devices.stdout) as Array<{ id?: string; device?: string; status?: { clock?: { skewMs: number } } }>)
    .find((d) => (d.id ?? d.device) === "ahead");
  const skew = row?.status?.clock?.skewMs;
  assert.ok(skew !== undefined && Math.abs(skew - 3_600_000) < 30_000, `skew ≈ +1 h, got ${skew}`);
});
