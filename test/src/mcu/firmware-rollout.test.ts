import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { json, type Fleet } from "../harness/index.js";
import { FlashFixture, type Row } from "./flash-fixture.js";
import { mcuRows } from "./support.js";

/**
 * Fleet-wide firmware rollout end to end: `canopy firmware rollout` → hub KV `rollouts` → the gateway's
 * wave engine (the config rollouts' engine with the firmware target) → one `firmware.flash` command per
 * MCU → agent → bridge → the Canopy bootloader of 6 sim MCUs over socat ptys → health gate (confirmed
 * and still online after the soak) → next wave, or halt.
 */
interface RolloutJson {
  id: string;
  state: string;
  reason?: string;
  current: number;
  previous: Record<string, string>;
  waves: Array<{ devices: string[]; releasedAt?: number; passedAt?: number; results: Record<string, { result: string; error?: string }> }>;
}

const MCUS = ["m1", "m2", "m3", "m4", "m5", "m6"];
const fx = new FlashFixture("pi-w", "canopy-fw-rollout-", Object.fromEntries(MCUS.map((m) => [m, []])), ["lab"]);
let fleet: Fleet;
const DEV = fx.device;
const unit = (m: string): string => `${DEV}/${m}`;
const begins = (m: string): number => fx.sims[m]!.output.filter((l) => l.includes('"event":"boot-begin"')).length;

before(async () => {
  await fx.start();
  fleet = fx.fleet;
});
after(() => fx.stop());

async function rollout(version: string, select: string[]): Promise<{ code: number; r: RolloutJson }> {
  const res = await fleet.cli(
    ["firmware", "rollout", "--board", "rp2040", "--fw-version", version, ...select, "--waves", "16%,50%,100%",
      "--gate", "confirmed-and-online:2s", "--confirm-within", "3s", "--health-timeout", "120s", "--wait", "--json"],
    240_000,
  );
  return { code: res.code ?? -1, r: json<RolloutJson>(res) };
}

/** For a failure message: what the agent and its bridge logged about flashes and serial ports. */
function diag(): string {
  const agent = fleet.agent(DEV).proc.output.filter((l) => /flash|serial port|bridge|link/i.test(l)).slice(-25).join("\n");
  const sims = Object.entries(fx.sims).map(([m, p]) => `--- sim ${m}\n${p.output.slice(-6).join("\n")}`).join("\n");
  return `${agent}\n${sims}`;
}

async function rows(ok: (rs: Row[]) => boolean, what: string): Promise<Row[]> {
  return (await mcuRows(fleet, DEV, (rs) => ok(rs as Row[]), what, 60_000)) as Row[];
}

test("firmware rollout refuses bad input at the door (exit 2) and an image that is not stored (exit 1)", async () => {
  for (const args of [
    ["--board", "rp2040"],
    ["--board", "bad board", "--fw-version", "1.0.0"],
    ["--board", "rp2040", "--fw-version", "1.0.0", "--waves", "50%,10%"],
    ["--board", "rp2040", "--fw-version", "1.0.0", "--gate", "vibes"],
    ["--board", "rp2040", "--fw-version", "1.0.0", "--group", "lab", "--device", DEV],
    ["--board", "rp2040", "--fw-version", "1.0.0", "--where", "os.platfrom == 1"],
  ]) {
    const r = await fleet.cli(["firmware", "rollout", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
  }
  const missing = await fleet.cli(["firmware", "rollout", "--board", "rp2040", "--fw-version", "9.9.9"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no firmware rp2040@9\.9\.9 in the store/);
});

test("a bad image (never confirms) halts wave 1: its MCU is rolled back to 1.0.0, waves 2 and 3 are untouched", async () => {
  const bad = await fx.image("bad.bin", 8 * 1024, "CANOPY-NEVER-CONFIRM");
  await fx.upload(bad.path, "2.0.0-bad");
  const { code, r } = await rollout("2.0.0-bad", ["--group", "lab"]);
  assert.equal(code, 1, `${JSON.stringify(r)}\n${diag()}`);
  assert.equal(r.state, "halted");
  assert.deepEqual(r.waves.map((w) => w.devices.length), [1, 2, 3]);
  assert.deepEqual(Object.values(r.previous).sort(), Array(6).fill("1.0.0"));
  const [w1, w2, w3] = r.waves;
  const victim = w1!.devices[0]!;
  assert.equal(victim, unit("m1"), "waves take the MCUs in sorted order");
  assert.equal(w1!.results[victim]?.result, "failed");
  assert.match(w1!.results[victim]?.error ?? "", /^rolled_back: .*the bootloader reverted to 1\.0\.0/);
  assert.match(r.reason ?? "", /^wave 1\/3: 1 failure\(s\), more than --max-failures 0: pi-w\/m1: rolled_back/);
  assert.equal(w2!.releasedAt, undefined);
  assert.equal(w3!.releasedAt, undefined);

  const after = await rows((rs) => rs.find((x) => x.id === "m1")?.lastFlash?.state === "rolled_back", "m1 rolled back");
  assert.equal(after.length, 6);
  assert.deepEqual(after.filter((x) => x.firmware === "1.0.0").map((x) => x.id).sort(), MCUS, "all six still run 1.0.0");
  assert.deepEqual(after.filter((x) => x.lastFlash !== undefined).map((x) => x.id), ["m1"], "only wave 1 was flashed");
  assert.deepEqual(MCUS.map(begins), [1, 0, 0, 0, 0, 0], "the bootloaders of waves 2 and 3 never saw a BEGIN");
  await fx.sims.m1!.waitForOutput(/"event":"boot-reverted","version":"1\.0\.0"/, 10_000);
});

test("a good image rolls out in 3 waves (1, 2, 3 MCUs): every wave passes its gate and all 6 MCUs run it", async () => {
  const good = await fx.image("good.bin", 8 * 1024);
  await fx.upload(good.path, "2.0.0");
  // Selected by a live query this time (CEL over device facts, as `canopy query --where`).
  const { code, r } = await rollout("2.0.0", ["--where", `device == "${DEV}"`]);
  assert.equal(code, 0, `${JSON.stringify(r)}\n${diag()}`);
  assert.equal(r.state, "completed");
  assert.deepEqual(r.waves.map((w) => w.devices.length), [1, 2, 3]);
  for (const [i, w] of r.waves.entries()) {
    assert.ok(w.passedAt !== undefined && w.releasedAt !== undefined, `wave ${i + 1} passed`);
    assert.deepEqual(Object.values(w.results).map((x) => x.result), Array(w.devices.length).fill("ok"));
    // The gate: a wave passes only after its MCUs confirmed and stayed online for the 2 s soak.
    assert.ok(w.passedAt - w.releasedAt >= 2_000, `wave ${i + 1} passed ${w.passedAt - w.releasedAt} ms after release`);
    if (i > 0) assert.ok(w.releasedAt >= (r.waves[i - 1]!.passedAt ?? Infinity), `wave ${i + 1} released after wave ${i} passed`);
  }
  const all = await rows((rs) => rs.filter((x) => x.firmware === "2.0.0" && x.imageSha256 === good.sha256).length === 6, "all six run 2.0.0");
  assert.deepEqual(all.map((x) => x.lastFlash?.state), Array(6).fill("confirmed"));
  assert.deepEqual(MCUS.map(begins), [2, 1, 1, 1, 1, 1], "one BEGIN per MCU for this rollout (m1 also had the bad one)");

  const list = json<RolloutJson[]>(await fleet.cli(["firmware", "rollout", "status", "--json"]));
  assert.deepEqual(list.map((x) => x.state), ["completed", "halted"]);
  const status = await fleet.cli(["firmware", "rollout", "status", r.id]);
  assert.match(status.stdout, /wave 3 \(100%\): passed — 3\/3 confirmed/);
});

test("abort during the soak: the MCU that took the new image is flashed back to the version it ran; later waves untouched", async () => {
  const next = await fx.image("next.bin", 8 * 1024);
  await fx.upload(next.path, "2.1.0");
  const res = await fleet.cli(["firmware", "rollout", "--board", "rp2040", "--fw-version", "2.1.0", "--group", "lab", "--waves", "16%,50%,100%",
    "--gate", "confirmed-and-online:10m", "--confirm-within", "3s", "--json"]);
  assert.equal(res.code, 0, res.stderr);
  const r = json<RolloutJson>(res);
  assert.deepEqual(Object.values(r.previous), Array(6).fill("2.0.0"));
  const before = MCUS.map(begins);
  await rows((rs) => rs.find((x) => x.id === "m1")?.firmware === "2.1.0", "m1 took 2.1.0 (wave 1, now soaking)");
  const abort = await fleet.cli(["firmware", "rollout", "abort", r.id, "--json"]);
  assert.equal(abort.code, 0, abort.stderr);
  const back = await rows((rs) => rs.find((x) => x.id === "m1")?.firmware === "2.0.0" && rs.find((x) => x.id === "m1")?.lastFlash?.version === "2.0.0", "m1 flashed back to 2.0.0");
  assert.equal(back.find((x) => x.id === "m1")?.lastFlash?.state, "confirmed");
  assert.deepEqual(back.filter((x) => x.firmware === "2.0.0").length, 6, "all six on 2.0.0 again");
  const halted = json<RolloutJson>(await fleet.cli(["firmware", "rollout", "status", r.id, "--json"]));
  assert.equal(halted.state, "halted");
  assert.equal(halted.reason, "aborted by operator");
  assert.equal(halted.waves[1]?.releasedAt, undefined);
  assert.deepEqual(MCUS.map((m, i) => begins(m) - before[i]!), [2, 0, 0, 0, 0, 0], "m1: the new image, then the old one back; no one else");
});
