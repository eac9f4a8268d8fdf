import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { DiscardPolicy } from "@nats-io/jetstream";
import { Fleet, publishSeries, runCanopy, tempDir, waitForCount } from "../harness/index.js";

// Issue 10: the hub's FLEET_UP_* shards and CMD carry max_bytes / max_age (configurable on `hub start`,
// recorded for every shard, also one that a CLI `device add` creates), discard old.
const MIB = 2 ** 20;
const DAY_NS = 86_400e9;
let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start({ hubArgs: ["--up-max-bytes", "256MiB", "--up-max-age", "10d", "--cmd-max-bytes", "64MiB", "--cmd-max-age", "7d"] });
});
after(async () => {
  await fleet?.stop();
});

test("hub start --up-max-bytes/--up-max-age/--cmd-max-bytes/--cmd-max-age: the shard a device add creates and CMD carry them; data flows", async () => {
  const agent = await fleet.startAgent("lim1");
  const hub = await fleet.hubConnection();
  const jsm = await jetstreamManager(hub);
  const shard = (await jsm.streams.info("FLEET_UP_0")).config;
  assert.equal(shard.max_bytes, 256 * MIB);
  assert.equal(shard.max_age, 10 * DAY_NS);
  assert.equal(shard.discard, DiscardPolicy.Old);
  const cmd = (await jsm.streams.info("CMD")).config;
  assert.equal(cmd.max_bytes, 64 * MIB);
  assert.equal(cmd.max_age, 7 * DAY_NS);
  const leaf = await fleet.leafConnection(agent.device);
  const acked = await publishSeries(leaf, { device: agent.device, subject: "up.lim1.tlm.x", count: 200, window: 50 });
  assert.equal(acked.size, 200);
  await waitForCount(hub, "FLEET_UP_0", "up.lim1.tlm.x", 200, 60_000);
});

test("bad stream limits are refused before anything starts (exit 2, the flag named)", async () => {
  const dir = await tempDir("canopy-limits-");
  try {
    for (const [flag, value, re] of [
      ["--up-max-bytes", "lots", /invalid --up-max-bytes "lots"/],
      ["--cmd-max-age", "10m", /--cmd-max-age must be at least 1h/],
      ["--up-max-bytes", "512KiB", /--up-max-bytes must be at least 1MiB/],
      ["--cmd-max-bytes", "30GiB", /--cmd-max-bytes 30GiB exceeds the hub's JetStream store limit/],
    ] as const) {
      const r = await runCanopy(["hub", "start", "--data", dir.path, "--port", "-1", "--leaf-port", "-1", "--http-port", "-1", flag, value], { timeoutMs: 20_000 });
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  } finally {
    await dir.remove();
  }
});
