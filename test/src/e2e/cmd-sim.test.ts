import { test } from "node:test";
import assert from "node:assert/strict";
import type { CommandRecord } from "@canopy/protocol";
import { CanopyProcess, Fleet, json } from "../harness/index.js";

// Issue 15: simulated devices take commands (`canopy sim fleet --commands`), so a command to a whole
// simulated fleet can be measured: CLI → hub CMD → the simulator's consumer → result events into a
// hub shard → the gateway's result ingest → KV `commands` → `cmd send --wait`.

test("a command to 200 simulated devices: every one succeeds exactly once; a name they do not run is rejected", async (t) => {
  const fleet = await Fleet.start();
  const sims: CanopyProcess[] = [];
  t.after(async () => {
    await Promise.allSettled(sims.map((s) => s.stop()));
    await fleet.stop();
  });
  for (const first of [0, 100]) {
    sims.push(new CanopyProcess(["sim", "fleet", "--devices", "100", "--first", String(first), "--server", fleet.hub.client,
      "--groups", "fan", "--heartbeat", "10s", "--commands"], fleet.env));
  }
  await Promise.all(sims.map((s) => s.waitForOutput(/"event":"sim-ready"/, 120_000)));

  const started = Date.now();
  const r = await fleet.cli(["cmd", "send", "--group", "fan", "ping", "--wait", "--timeout", "60s", "--json"]);
  const wallMs = Date.now() - started;
  assert.equal(r.code, 0, r.stderr);
  const records = json<CommandRecord[]>(r);
  assert.equal(records.length, 200);
  assert.equal(new Set(records.map((c) => c.device)).size, 200, "one command per device");
  for (const c of records) {
    assert.equal(c.state, "succeeded", JSON.stringify(c));
    assert.equal((c.result as { pong?: boolean; device?: string }).device, c.device);
    assert.ok(c.times.running !== undefined && c.times.succeeded !== undefined);
  }
  process.stdout.write(`# ping to 200 simulated devices, CLI wall (process start included): ${wallMs} ms\n`);

  const bad = await fleet.cli(["cmd", "send", "--device", "sim-0007", "sysinfo", "--wait", "--timeout", "30s", "--json"]);
  assert.equal(bad.code, 1, bad.stderr);
  const [rec] = json<CommandRecord[]>(bad);
  assert.equal(rec?.state, "rejected");
  assert.match(rec?.error?.message ?? "", /ping only/);

  // Each ping ran once: the 200 in KV `commands` plus the rejected one, no more, and none still open.
  const all = json<CommandRecord[]>(await fleet.cli(["cmd", "list", "--limit", "1000", "--json"]));
  assert.equal(all.length, 201);
  assert.equal(all.filter((c) => c.state === "succeeded").length, 200);
});
