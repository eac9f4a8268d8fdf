import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, statfs, writeFile, open } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import { CanopyProcess, Fleet, json } from "../harness/index.js";
import { DoctorJson } from "@canopy/gateway/cli/json/schemas";

// `canopy doctor` against a real fleet: one healthy device, one whose clock is 10 minutes ahead
// (libfaketime on the agent process; its leaf nats-server is a static Go binary and keeps real time),
// and one whose data disk (a 96 MiB tmpfs) is filled up after the agent started.
const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
let fleet: Fleet;
let tmpfs: string | undefined;

interface Report {
  ok: boolean;
  problems: number;
  checks: Array<{ scope: string; device?: string; check: string; status: string; detail: string }>;
}

before(async () => {
  fleet = await Fleet.start();
  await fleet.startAgent("ok1");
  await fleet.startAgent("skew1", { env: { LD_PRELOAD: FAKETIME_LIB, FAKETIME: "+10m", FAKETIME_DONT_FAKE_MONOTONIC: "1" } });
  tmpfs = join(fleet.dir.path, "devices", "full1");
  await mkdir(tmpfs, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=96m", "tmpfs", tmpfs]);
  const cfg = join(fleet.dir.path, "full1.json");
  await writeFile(cfg, JSON.stringify({ up: { maxBytes: "8MiB" } }));
  await fleet.startAgent("full1", { args: ["--config", cfg] });
  // Fill the disk, leaving 1 MiB.
  const s = await statfs(tmpfs);
  const fill = Number(s.bavail) * Number(s.bsize) - 2 ** 20;
  const fh = await open(join(tmpfs, "ballast"), "w");
  const chunk = Buffer.alloc(2 ** 20);
  for (let left = fill; left > 0; left -= chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, left));
  await fh.close();
});
after(async () => {
  if (fleet?.agents.has("full1")) await fleet.agent("full1").proc.stop();
  if (tmpfs) execFileSync("umount", ["-l", tmpfs]);
  await fleet?.stop();
});

const find = (r: Report, device: string, check: string) => r.checks.find((c) => c.device === device && c.check === check);

test("doctor flags a device clock 10 minutes ahead and a full disk, exits 1, and passes the healthy device", async () => {
  let last: Report | undefined;
  const report = await waitFor(
    async () => {
      const res = await fleet.cli(["doctor", "--json"]);
      const r = (last = json<Report>(res));
      const ready = find(r, "skew1", "clock")?.status === "fail" && find(r, "full1", "disk")?.status === "fail";
      return ready ? { r, code: res.code } : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 1_000, what: "doctor to see the skewed clock and the full disk" },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast: ${JSON.stringify(last?.checks.filter((c) => c.device))}`);
  });
  assert.equal(report.code, 1);
  DoctorJson.parse(report.r);
  assert.equal(report.r.ok, false);
  assert.match(find(report.r, "skew1", "clock")?.detail ?? "", /device clock is (9\.9|10\.0|10\.1) min ahead of the hub/);
  // The agent's disk guard: under 2 MiB free on the data partition, new data is refused.
  assert.match(find(report.r, "full1", "disk")?.detail ?? "", /^data partition full \(low-space, [\d.]+ MiB free\)/);
  assert.equal(find(report.r, "ok1", "clock")?.status, "ok");
  assert.equal(find(report.r, "ok1", "disk")?.status, "ok");
  assert.equal(find(report.r, "ok1", "engine")?.status, "ok");
  assert.match(find(report.r, "ok1", "link")?.detail ?? "", /compression s2_auto, sync 100ms/);
  assert.match(report.r.checks.find((c) => c.scope === "hub" && c.check === "engine")?.detail ?? "", /nats-server 2\.\d+\.\d+ \(floor 2\.14\.0\)/);
  assert.equal(report.r.problems, 2, JSON.stringify(report.r.checks.filter((c) => c.status === "fail")));

  const human = await fleet.cli(["doctor"]);
  assert.equal(human.code, 1);
  assert.match(human.stdout, /device:skew1\s+clock\s+FAIL\s+device clock is/);
  assert.match(human.stdout, /2 problem\(s\)/);

  const healthy = await fleet.cli(["doctor", "--device", "ok1", "--json"]);
  assert.equal(healthy.code, 0, healthy.stdout);
  assert.equal(json<Report>(healthy).ok, true);
  assert.equal((await fleet.cli(["doctor", "--device", "nope"])).code, 1);
  assert.equal((await fleet.cli(["doctor", "--device", "bad.id"])).code, 2);
});

test("--watch redraws until Ctrl-C; fan-out --wait says n/m done; sysinfo prints readable lines", async () => {
  const watch = new CanopyProcess(["devices", "--watch", "1s", "--json"], fleet.env);
  await waitFor(() => watch.output.filter((l) => l.startsWith("[")).length >= 2, { timeoutMs: 30_000, what: "two frames of devices --watch" });
  for (const frame of watch.output.filter((l) => l.startsWith("["))) assert.equal((JSON.parse(frame) as unknown[]).length, 3);
  watch.killGroup("SIGINT");
  assert.equal(await watch.exited, 0);

  const fan = await fleet.cli(["cmd", "send", "--where", 'device == "ok1" || device == "skew1"', "ping", "--wait", "--timeout", "60s"], 90_000);
  assert.equal(fan.code, 0, fan.stdout + fan.stderr);
  assert.match(fan.stderr, /^1\/2 done\n2\/2 done\n/m);

  const info = await fleet.cli(["cmd", "send", "--device", "ok1", "sysinfo", "--wait", "--timeout", "60s"], 90_000);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /\(below\)/);
  assert.match(info.stdout, /^ok1 sysinfo:\n {2}\S+:/m);
  assert.ok(info.stdout.split("\n").length > 5, "several lines");
});
