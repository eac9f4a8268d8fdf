import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { waitFor, type FirmwareManifest } from "@canopy/protocol";
import { json, type Fleet, type TempDir } from "../harness/index.js";
import { FlashFixture, type FinalLine } from "./flash-fixture.js";

/**
 * Firmware end to end: `canopy firmware upload` → hub object store → `canopy flash` → hub CMD → leaf
 * → agent (download with resume, sha256) → bridge → Canopy serial bootloader of a sim MCU over a
 * socat pty → trial boot → CONFIRM (or revert) → `canopy mcu list`.
 */
let fleet: Fleet;
let dir: TempDir;
const fx = new FlashFixture("pi-f", "canopy-mcu-flash-");
const { ptys, sims } = fx;
const DEV = fx.device;
const startSim = fx.startSim.bind(fx);
const image = fx.image.bind(fx);
const upload = fx.upload.bind(fx);
const flash = fx.flash.bind(fx);
const row = fx.row.bind(fx);

before(async () => {
  await fx.start();
  fleet = fx.fleet;
  dir = fx.dir;
});
after(() => fx.stop());

test("firmware upload refuses a wrong --sha256 and an unparsable format (exit 2, nothing stored); list and rm", async () => {
  const img = await image("a.bin", 4096);
  const wrong = await fleet.cli(["firmware", "upload", img.path, "--board", "rp2040", "--fw-version", "0.0.1", "--sha256", "0".repeat(64)]);
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.match(wrong.stderr, /does not match the file/);
  const notUf2 = await fleet.cli(["firmware", "upload", img.path, "--board", "rp2040", "--fw-version", "0.0.1", "--format", "uf2"]);
  assert.equal(notUf2.code, 2);
  assert.match(notUf2.stderr, /not a valid uf2 image/);
  const notHex = await fleet.cli(["firmware", "upload", img.path, "--board", "rp2040", "--fw-version", "0.0.1", "--format", "avr-hex"]);
  assert.equal(notHex.code, 2);
  const m = await upload(img.path, "0.0.1");
  assert.equal(m.sha256, img.sha256);
  assert.equal(m.size, 4096);
  const list = json<FirmwareManifest[]>(await fleet.cli(["firmware", "list", "--json"]));
  assert.deepEqual(list.map((x) => `${x.board}@${x.version}`), ["rp2040@0.0.1"]);
  assert.equal((await fleet.cli(["firmware", "upload", img.path, "--board", "rp2040", "--fw-version", "0.0.1"])).code, 1, "versions are immutable");
  assert.equal((await fleet.cli(["firmware", "rm", "--board", "rp2040", "--fw-version", "0.0.1"])).code, 0);
  assert.deepEqual(json<FirmwareManifest[]>(await fleet.cli(["firmware", "list", "--json"])), []);
  // canopy flash validates at the door; an image that is not stored is a runtime error.
  assert.equal((await fleet.cli(["flash", "--device", DEV, "--mcu", "m1", "--firmware", "rp2040"])).code, 2);
  assert.equal((await fleet.cli(["flash", "--device", DEV, "--mcu", "bad id", "--firmware", "rp2040@1.0.0"])).code, 2);
  const missing = await fleet.cli(["flash", "--device", DEV, "--mcu", "m1", "--firmware", "rp2040@0.0.1"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no firmware rp2040@0\.0\.1 in the store/);
});

test("a 64 KiB image flashed to a sim MCU over a pty is confirmed; mcu list shows the new version and hash", async () => {
  const img = await image("v110.bin", 64 * 1024);
  await upload(img.path, "1.1.0");
  const { final, events } = await flash("m3", "1.1.0");
  assert.equal(final.state, "confirmed", final.detail);
  assert.equal(final.runningVersion, "1.1.0");
  const states = [...new Set(events.map((e) => e.state))];
  for (const s of ["downloading", "flashing", "booting", "confirmed"]) assert.ok(states.includes(s), `${s} in ${states.join(",")}`);
  const r = await row("m3", (x) => x.firmware === "1.1.0" && x.online, "m3 runs 1.1.0");
  await sims.m3!.waitForOutput(/"event":"boot-confirmed","version":"1\.1\.0"/, 10_000);
  assert.equal(r.imageSha256, img.sha256);
  assert.equal(r.lastFlash?.state, "confirmed");
  assert.equal(r.lastFlash?.version, "1.1.0");
});

test("1 % of frames corrupted on the wire: the image still arrives intact and is confirmed", async () => {
  const { final } = await flash("m2", "1.1.0");
  assert.equal(final.state, "confirmed", final.detail);
  const trial = sims.m2!.output.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l["event"] === "boot-trial");
  assert.equal(trial?.["good"], true);
  await row("m2", (x) => x.firmware === "1.1.0", "m2 runs 1.1.0");
  await sims.m2!.waitForOutput(/"event":"boot-confirmed","version":"1\.1\.0"/, 10_000);
});

test("a hash that does not match is never activated (failed); an image that never confirms is rolled back", async () => {
  const before = await row("m2", (x) => x.firmware === "1.1.0" && x.online, "m2 on 1.1.0").catch(async (err: unknown) => {
    throw new Error(`${String(err)}\n${(await fleet.cli(["mcu", "list", "--device", DEV])).stdout}\n${sims.m2!.output.slice(-5).join("\n")}`);
  });
  const begins = (): number => sims.m2!.output.filter((l) => l.includes('"event":"boot-begin"')).length;
  const beginsBefore = begins();
  const wrong = await fleet.cli(["cmd", "send", "--device", DEV, "firmware.flash", "--wait", "--timeout", "120s", "--json", "--args",
    JSON.stringify({ mcu: "m2", board: "rp2040", version: "1.1.0", sha256: "a".repeat(64), size: 64 * 1024, format: "bin" })], 130_000);
  const [rec] = json<Array<{ state: string; error?: { message: string } }>>(wrong);
  assert.equal(rec?.state, "failed");
  assert.match(rec?.error?.message ?? "", /^failed: download: .*hashes [0-9a-f]{64}, expected a{64}: not flashed/);
  assert.equal(begins(), beginsBefore, "m2's bootloader was never asked to take the image");

  const bad = await image("bad.bin", 32 * 1024, "CANOPY-NEVER-CONFIRM");
  await upload(bad.path, "6.6.6-bad");
  const { final } = await flash("m2", "6.6.6-bad", ["--confirm-within", "3s"]);
  assert.equal(final.state, "rolled_back", final.detail);
  assert.equal(final.runningVersion, "1.1.0", JSON.stringify(final) + sims.m2!.output.slice(-6).join("\n"));
  assert.match(final.detail, /did not confirm within 3000 ms; the bootloader reverted to 1\.1\.0/);
  const r = await row("m2", (x) => x.lastFlash?.state === "rolled_back", "m2 rolled back");
  assert.equal(r.firmware, "1.1.0");
  assert.equal(r.imageSha256, before.imageSha256);
});
