import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { AvrdudeFlasher } from "@canopy/firmware-bridge/flash/avrdude";
import { checkIntelHex } from "@canopy/firmware-bridge/flash/avrdude-hex";
import { FlashError, type FlashProgress } from "@canopy/firmware-bridge/flash/flasher";
import { tempDir } from "../harness/index.js";
import { buildAvrApp, SimAvr } from "./simavr.js";

/**
 * The avrdude flasher end to end against real parts: Debian's avrdude 7.1 talks STK500 to Debian's
 * optiboot running in simavr (ATmega328P at 16 MHz, real time), over a pty; the new application's
 * banner confirms the version. Flashed twice: the second flash proves the reset-on-open path an Uno
 * relies on (the MCU is running the first app when avrdude opens the port).
 */
test("avrdude + simavr + optiboot: flash, verify, banner seen, confirmed; then re-flash a newer version", async (t) => {
  const dir = await tempDir("canopy-avr-");
  t.after(() => dir.remove());
  const [v1, v2] = await Promise.all([buildAvrApp("1.2.3"), buildAvrApp("1.2.4")]);
  const sim = await SimAvr.start(dir.path);
  t.after(() => sim.stop());
  const flasher = new AvrdudeFlasher();

  for (const [version, file] of [["1.2.3", v1], ["1.2.4", v2]] as const) {
    const data = await readFile(file);
    const size = checkIntelHex(data).bytes;
    const events: FlashProgress[] = [];
    const res = await flasher
      .flash({
        port: sim.port,
        baud: 115200,
        image: { data, format: "avr-hex", sha256: "n/a", version, board: "uno" },
        signal: new AbortController().signal,
        deadlineMs: 90_000,
        onProgress: (p) => events.push(p),
        options: { part: "m328p", programmer: "arduino", mcu: "avr-1" },
      })
      .catch((err: unknown) => {
        throw new Error(`flash ${version} failed: ${(err as Error).message}\nsimavr-uart: ${sim.log()}`);
      });
    assert.deepEqual(res, { bootedVersion: version, confirmed: true, bytesSent: size }, `flash ${version}`);
    assert.deepEqual([...new Set(events.map((e) => e.phase))], ["preparing", "flashing", "verifying", "booting", "confirming"]);
    assert.equal(events.filter((e) => e.phase === "flashing" && e.bytes === size && e.total === size).length, 1);
    assert.equal(events.filter((e) => e.phase === "verifying" && e.bytes === size && e.total === size).length, 1);
    assert.equal(events.at(-1)?.detail, `hello avr-1 uno ${version}`);
  }

  // The real avrdude's refusal of a chip that is not the part asked for maps to tool_failed.
  const data = await readFile(v1);
  const wrongPart = flasher.flash({
    port: sim.port,
    image: { data, format: "avr-hex", sha256: "n/a", version: "1.2.3", board: "uno" },
    signal: new AbortController().signal,
    deadlineMs: 60_000,
    onProgress: () => {},
    options: { part: "m2560", attempts: "1" },
  });
  await assert.rejects(wrongPart, (e: unknown) => e instanceof FlashError && e.code === "tool_failed" && /not the part asked for/.test(e.message));
});
