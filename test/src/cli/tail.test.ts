import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { CANOPY_BIN, Fleet, CanopyProcess, publishSeries, waitForCount } from "../harness/index.js";
import { waitFor } from "@canopy/protocol";

// tail through the real CLI: a bounded default window, -n, wildcards within a device, and --follow
// across a hub SIGKILL + restart (every message exactly once, in order).
let fleet: Fleet;
const FILTER = "up.t1.tlm.seq";

before(async () => {
  fleet = await Fleet.start();
  await fleet.startAgent("t1");
  const leaf = await fleet.leafConnection("t1");
  const acked = await publishSeries(leaf, { device: "t1", subject: FILTER, count: 300, window: 50 });
  assert.equal(acked.size, 300);
  // 2.15.1 retries a source that found no leaf with a growing backoff: the first data can take ~40 s.
  await waitForCount(await fleet.hubConnection(), "FLEET_UP_0", FILTER, 300, 120_000);
});
after(async () => {
  await fleet?.stop();
});

function payloads(lines: readonly string[]): number[] {
  return lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { subject: string; payload: string }).filter((r) => r.subject === FILTER).map((r) => Number(r.payload));
}

test("-n N gives the last N; the default window is bounded; a wildcard within a device works", async () => {
  const r = await fleet.cli(["tail", "--device", "t1", "--subject", "up.*.tlm.seq", "-n", "5", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(payloads(r.stdout.split("\n")), [295, 296, 297, 298, 299]);
  const rel = await fleet.cli(["tail", "--device", "t1", "--subject", "tlm.seq", "--last", "2", "--json"]);
  assert.deepEqual(payloads(rel.stdout.split("\n")), [298, 299]);
  const all = await fleet.cli(["tail", "--json"]);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout.trim().split("\n").length, 100, "default: the last 100");
  const record = JSON.parse(all.stdout.trim().split("\n").at(-1) ?? "{}") as { device: string; time: string; ageMs: number };
  assert.equal(record.device, "t1");
  assert.ok(!Number.isNaN(Date.parse(record.time)) && record.ageMs >= 0);
  const bad = await fleet.cli(["tail", "--device", "t1", "--subject", "up.other.tlm.seq"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a subject of device t1/);
});

test("tail --follow across a hub SIGKILL + restart: every message exactly once, in order", async () => {
  const tail = new CanopyProcess(["tail", "--device", "t1", "--subject", "up.*.tlm.seq", "-n", "50", "--follow", "--json"], fleet.env);
  await waitFor(() => payloads(tail.output).includes(299), { timeoutMs: 20_000, what: "tail printed the window" });
  const leaf = await fleet.leafConnection("t1");
  await fleet.restartHub({
    kill: true,
    // While the hub is down the device keeps publishing into its UP stream.
    beforeStart: async () => {
      const acked = await publishSeries(leaf, { device: "t1", subject: FILTER, from: 300, count: 100, window: 20 });
      assert.equal(acked.size, 100);
    },
  });
  const more = await publishSeries(leaf, { device: "t1", subject: FILTER, from: 400, count: 100, window: 20, retryUntil: Date.now() + 30_000 });
  assert.equal(more.size, 100);
  await waitFor(() => payloads(tail.output).includes(499), { timeoutMs: 180_000, intervalMs: 250, what: `tail to reach 499 (last: ${payloads(tail.output).at(-1)})` });
  await tail.stop();
  const got = payloads(tail.output);
  assert.deepEqual(got, Array.from({ length: 350 }, (_, i) => 150 + i), "150..499 each exactly once, in order");
  assert.ok(tail.output.some((l) => /hub connection lost/.test(l)), "said the hub went away");
  console.log(`# tail --follow across hub SIGKILL: ${got.length} messages, 0 gaps, 0 duplicates`);
});

test("canopy tail … | head: a closed pipe ends the command quietly (no EPIPE crash)", async () => {
  const r = await new Promise<{ stderr: string }>((resolve) => {
    const cmd = `node ${JSON.stringify(CANOPY_BIN)} tail --device t1 -n 300 --json | head -1 >/dev/null; echo "rc=\${PIPESTATUS[0]}" >&2`;
    const child = spawn("bash", ["-c", cmd], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...fleet.env } });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", () => resolve({ stderr }));
  });
  assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|Error:/);
  assert.match(r.stderr, /rc=0/);
});

test("tail --follow exits 1 with a message when the hub stays away", async () => {
  const tail = new CanopyProcess(["tail", "--device", "t1", "-n", "0", "--follow", "--give-up", "2s"], fleet.env);
  await tail.waitForOutput(/following up\.t1\.>/, 10_000);
  fleet.hub.proc.killGroup("SIGKILL");
  const t0 = Date.now();
  const code = await tail.exited;
  assert.equal(code, 1);
  assert.ok(Date.now() - t0 < 10_000, `exited after ${Date.now() - t0} ms`);
  assert.ok(tail.output.some((l) => /stopped following: the hub stayed unreachable for 2 s/.test(l)), tail.output.join("\n"));
});
