import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor, type FirmwareManifest } from "@canopy/protocol";
import { CanopyProcess, Fleet, json, tempDir, type TempDir } from "../harness/index.js";
import { PtyPair } from "../e2e/bridge-support.js";
import { mcuRows, online, type McuRow } from "./support.js";

/**
 * Firmware end to end: `canopy firmware upload` → hub object store → `canopy flash` → hub CMD → leaf
 * → agent (download with resume, sha256) → bridge → Canopy serial bootloader of a sim MCU over a
 * socat pty → trial boot → CONFIRM (or revert) → `canopy mcu list`.
 */
let fleet: Fleet;
let dir: TempDir;
const ptys: Record<string, PtyPair> = {};
const sims: Record<string, CanopyProcess> = {};
const DEV = "pi-f";

interface FinalLine {
  final: true;
  state: string;
  detail: string;
  runningVersion?: string;
}
interface Row extends McuRow {
  imageSha256?: string;
  lastFlash?: { state: string; version: string; sha256: string; at: number; detail: string };
}

function startSim(id: string, extra: string[]): CanopyProcess {
  const p = new CanopyProcess(["sim", "mcu", "--id", id, "--serial", ptys[id]!.b, "--binary", "--rate", "1", "--board", "rp2040", "--firmware", "1.0.0", ...extra]);
  sims[id] = p;
  return p;
}

async function image(name: string, size: number, marker?: string): Promise<{ path: string; sha256: string }> {
  const data = randomBytes(size);
  if (marker) data.write(marker, Math.floor(size / 2), "latin1");
  const path = join(dir.path, name);
  await writeFile(path, data);
  return { path, sha256: createHash("sha256").update(data).digest("hex") };
}

async function upload(file: string, version: string): Promise<FirmwareManifest> {
  const r = await fleet.cli(["firmware", "upload", file, "--board", "rp2040", "--fw-version", version, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return json<FirmwareManifest>(r);
}

async function flash(mcu: string, version: string, extra: string[] = []): Promise<{ final: FinalLine; events: Array<{ state: string; bytes: number }> }> {
  const r = await fleet.cli(["flash", "--device", DEV, "--mcu", mcu, "--firmware", `rp2040@${version}`, "--wait", "--timeout", "150s", "--json", ...extra], 170_000);
  const lines = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const final = lines.find((l) => l["final"] === true) as FinalLine | undefined;
  assert.ok(final, `no final line: ${r.stdout} ${r.stderr}`);
  assert.equal(r.code, final.state === "confirmed" ? 0 : 1);
  return { final, events: lines.filter((l) => !l["final"]) as Array<{ state: string; bytes: number }> };
}

async function row(mcu: string, ok: (r: Row) => boolean, what: string): Promise<Row> {
  const rows = (await mcuRows(fleet, DEV, (rs) => rs.some((r) => r.id === mcu && ok(r as Row)), what, 60_000)) as Row[];
  return rows.find((r) => r.id === mcu)!;
}

before(async () => {
  fleet = await Fleet.start();
  dir = await tempDir("canopy-mcu-flash-");
  for (const id of ["m1", "m2", "m3"]) {
    ptys[id] = PtyPair.in(dir, id);
    await ptys[id].start();
  }
  await fleet.startAgent(DEV, {
    args: Object.values(ptys).flatMap((p) => ["--bridge-serial", p.a]),
    env: { CANOPY_TEST_FIRMWARE_CHUNK_DELAY_MS: "250" },
  });
  startSim("m1", ["--boot-write-ms", "15"]);
  startSim("m2", ["--corrupt", "0.01"]);
  startSim("m3", []);
  await mcuRows(fleet, DEV, (rows) => online(rows, ["m1", "m2", "m3"]), "three sim MCUs online", 60_000);
});

after(async () => {
  await Promise.allSettled(Object.values(sims).map((p) => p.stop()));
  await Promise.allSettled(Object.values(ptys).map((p) => p.kill()));
  await fleet?.stop();
  await dir?.remove();
});

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
