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
const DEV = "pi-r";

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
  dir = await tempDir("canopy-mcu-flash-resume-");
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

test("the pty killed at ~50 %: the flash resumes from the device's offset, at most one chunk sent twice", async () => {
  const img = await image("v120.bin", 64 * 1024);
  await upload(img.path, "1.2.0");
  const running = fleet.cli(["flash", "--device", DEV, "--mcu", "m1", "--firmware", "rp2040@1.2.0", "--wait", "--timeout", "150s", "--json"], 170_000);
  await sims.m1!.waitForOutput(/"written":32768/, 90_000);
  await ptys.m1!.kill();
  await new Promise((r) => setTimeout(r, 1_000));
  await ptys.m1!.start();
  const r = await running;
  const final = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as FinalLine).find((l) => l.final);
  assert.equal(final?.state, "confirmed", r.stdout + r.stderr);
  const begins = sims.m1!.output.map((l) => JSON.parse(l) as Record<string, number>).filter((l) => (l["event"] as unknown) === "boot-begin");
  assert.equal(begins.length, 2, JSON.stringify(begins));
  assert.equal(begins[0]?.["resume"], 0);
  assert.ok((begins[1]?.["resume"] ?? 0) >= 32768, `resumed at ${begins[1]?.["resume"]}`);
  const trial = sims.m1!.output.map((l) => JSON.parse(l) as Record<string, number>).find((l) => (l["event"] as unknown) === "boot-trial");
  assert.ok((trial?.["duplicateWrites"] ?? 99) <= 1, JSON.stringify(trial));
  assert.ok((trial?.["writes"] ?? 0) <= 128 + 2, JSON.stringify(trial));
  await row("m1", (x) => x.firmware === "1.2.0" && x.imageSha256 === img.sha256, "m1 runs 1.2.0");
});

test("the agent SIGKILLed during the download: after the restart it resumes from the last stored chunk", async () => {
  const img = await image("v130.bin", 160 * 1024);
  await upload(img.path, "1.3.0");
  const sent = await fleet.cli(["flash", "--device", DEV, "--mcu", "m3", "--firmware", "rp2040@1.3.0", "--json"]);
  assert.equal(sent.code, 0, sent.stderr);
  const agent = fleet.agent(DEV);
  await agent.proc.waitForOutput(/"version":"1\.3\.0","state":"downloading","bytes":(49152|65536|81920)/, 90_000);
  agent.proc.killGroup("SIGKILL");
  await agent.proc.exited;
  const restarted = await fleet.startAgent(DEV, {
    enroll: false,
    args: Object.values(ptys).flatMap((p) => ["--bridge-serial", p.a]),
    env: { CANOPY_TEST_FIRMWARE_CHUNK_DELAY_MS: "250" },
  });
  const line = await restarted.proc.waitForOutput(/resumed at byte \d+/, 90_000);
  const at = Number(/resumed at byte (\d+)/.exec(line)?.[1]);
  assert.ok(at >= 49152 && at % 16384 === 0, `resumed at ${at}`);
  const r = await row("m3", (x) => x.firmware === "1.3.0", "m3 runs 1.3.0").catch((err: unknown) => {
    const log = restarted.proc.output.filter((l) => /flash|firmware|command/.test(l)).slice(-12).join("\n");
    throw new Error(`${String(err)}\n${log}\n${sims.m3!.output.slice(-6).join("\n")}`);
  });
  assert.equal(r.imageSha256, img.sha256);
});

test("a staged flash (--apply-at) downloads and verifies first and writes to the MCU only at the set time", async () => {
  const img = await image("v140.bin", 16 * 1024);
  await upload(img.path, "1.4.0");
  const sentAt = Date.now();
  const { final, events } = await flash("m1", "1.4.0", ["--apply-at", "8s"]);
  assert.equal(final.state, "confirmed", final.detail);
  const all = events as Array<{ state: string; bytes: number; detail?: string; at?: number }>;
  const staged = all.find((e) => /staged until/.test(e.detail ?? ""));
  assert.ok(staged, JSON.stringify(all.map((e) => e.state)));
  const firstWrite = all.find((e) => e.state === "flashing");
  assert.ok((firstWrite?.at ?? 0) >= sentAt + 7_000, `writing began ${(firstWrite?.at ?? 0) - sentAt} ms after sending`);
  await row("m1", (x) => x.firmware === "1.4.0" && x.imageSha256 === img.sha256, "m1 runs 1.4.0");
});
