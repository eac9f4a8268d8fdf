import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { AvrdudeFlasher } from "@canopy/firmware-bridge/flash/avrdude";
import { Fleet, json, tempDir } from "../harness/index.js";
import { mcuRows } from "../mcu/support.js";
import type { FinalLine, Row } from "../mcu/flash-fixture.js";
import { buildAvrApp, SimAvr } from "./simavr.js";

/**
 * `canopy flash` through avrdude, the user's whole path: CLI → hub → leaf → agent (download, sha256)
 * → bridge (suspends its link on the port) → avrdude 7.1 → optiboot in simavr over a pty → the new
 * app's banner → `confirmed`, and `canopy mcu list` shows the new version and the image hash.
 */
test("canopy flash --flasher avrdude: simavr+optiboot flashed, banner seen, confirmed; mcu list shows version and hash", async (t) => {
  const dir = await tempDir("canopy-avr-e2e-");
  t.after(() => dir.remove());
  const [v1, v2] = await Promise.all([buildAvrApp("1.2.3"), buildAvrApp("1.2.4")]);
  const sim = await SimAvr.start(dir.path);
  t.after(() => sim.stop());
  // The Uno starts with an app (1.2.3) so the bridge sees it say hello: put it there with the flasher itself.
  const first = await new AvrdudeFlasher({ bannerWindowMs: 30_000 }).flash({
    port: sim.port, baud: 115200, image: { data: await readFile(v1), format: "avr-hex", sha256: "n/a", version: "1.2.3", board: "uno" },
    signal: new AbortController().signal, deadlineMs: 90_000, onProgress: () => {}, options: { attempts: "3" },
  });
  assert.equal(first.confirmed, true, sim.log());

  const fleet = await Fleet.start();
  t.after(() => fleet.stop());
  const DEV = "pi-avr";
  await fleet.startAgent(DEV, { args: ["--bridge-serial", sim.port] });
  await mcuRows(fleet, DEV, (rs) => rs.some((r) => r.id === "avr-1" && r.online && r.firmware === "1.2.3" && r.board === "uno"), "avr-1 online on 1.2.3", 90_000);

  const hex = await readFile(v2);
  const sha256 = createHash("sha256").update(hex).digest("hex");
  const up = await fleet.cli(["firmware", "upload", v2, "--board", "uno", "--fw-version", "1.2.4", "--format", "avr-hex", "--json"]);
  assert.equal(up.code, 0, up.stderr);
  const r = await fleet.cli(["flash", "--device", DEV, "--mcu", "avr-1", "--firmware", "uno@1.2.4", "--flasher", "avrdude", "--wait", "--timeout", "180s", "--json"], 200_000);
  const lines = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const final = lines.find((l) => l["final"] === true) as FinalLine | undefined;
  assert.equal(final?.state, "confirmed", `${r.stdout}\n${r.stderr}\nsimavr: ${sim.log()}`);
  assert.equal(r.code, 0);
  assert.equal(final.runningVersion, "1.2.4");
  const states = [...new Set(lines.filter((l) => !l["final"]).map((l) => l["state"] as string))];
  for (const s of ["downloading", "flashing", "verifying", "booting", "confirmed"]) assert.ok(states.includes(s), `${s} in ${states.join(",")}`);

  const rows = (await mcuRows(fleet, DEV, (rs) => rs.some((x) => x.id === "avr-1" && x.firmware === "1.2.4" && x.online), "avr-1 back on 1.2.4", 90_000)) as Row[];
  assert.equal(rows.length, 1);
  const row = rows[0]!;
  assert.equal(row.imageSha256, sha256);
  assert.equal(row.lastFlash?.state, "confirmed");
  assert.equal(row.lastFlash?.version, "1.2.4");
  assert.match(row.lastFlash?.detail ?? "", /1\.2\.4 booted and confirmed/);

  // An image whose banner names another version (1.2.3's hex stored as 1.2.5): avrdude targets have no
  // trial boot, so this is `failed` "unconfirmed" with what the MCU reported, never `rolled_back`.
  const mislabelled = await fleet.cli(["firmware", "upload", v1, "--board", "uno", "--fw-version", "1.2.5", "--format", "avr-hex"]);
  assert.equal(mislabelled.code, 0, mislabelled.stderr);
  const u = await fleet.cli(["flash", "--device", DEV, "--mcu", "avr-1", "--firmware", "uno@1.2.5", "--flasher", "avrdude", "--wait", "--timeout", "180s", "--json"], 200_000);
  const uFinal = u.stdout.trim().split("\n").map((l) => JSON.parse(l) as FinalLine).find((l) => l.final);
  assert.equal(uFinal?.state, "failed", `${u.stdout}\n${u.stderr}\nsimavr: ${sim.log()}`);
  assert.equal(u.code, 1);
  assert.match(uFinal.detail, /^unconfirmed: avrdude wrote and verified 1\.2\.5, but the MCU then reported version 1\.2\.3, not 1\.2\.5; .*nothing was reverted$/);
  const after = (await mcuRows(fleet, DEV, (rs) => rs.some((x) => x.id === "avr-1" && (x as Row).lastFlash?.version === "1.2.5"), "avr-1 last flash 1.2.5", 60_000)) as Row[];
  assert.equal(after[0]?.lastFlash?.state, "failed");
});
