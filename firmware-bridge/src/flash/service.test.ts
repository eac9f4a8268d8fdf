import { test } from "node:test";
import assert from "node:assert/strict";
import { flashOutcome } from "./service.js";

const req = { version: "1.2.4", confirmWithinMs: 15_000 };
const avrdude = { name: "avrdude", trialBoot: false };
const canopy = { name: "canopy", trialBoot: true };

test("flash outcome: confirmed on the new version's banner or CONFIRM, whatever the flasher", () => {
  for (const f of [avrdude, canopy]) {
    assert.deepEqual(flashOutcome(f, req, { confirmed: true, bootedVersion: "1.2.4", bytesSent: 100 }), {
      state: "confirmed", detail: "1.2.4 booted and confirmed", runningVersion: "1.2.4", bytesSent: 100,
    });
  }
});

test("flash outcome: unconfirmed avrdude flash (no trial boot) is failed with the reason, never rolled_back", () => {
  const other = flashOutcome(avrdude, req, { confirmed: false, bootedVersion: "1.2.3", bytesSent: 100 });
  assert.equal(other.state, "failed");
  assert.equal(other.runningVersion, "1.2.3");
  assert.match(other.detail, /^unconfirmed: avrdude wrote and verified 1\.2\.4, but the MCU then reported version 1\.2\.3, not 1\.2\.4; .*no trial boot, nothing was reverted$/);
  const silent = flashOutcome(avrdude, req, { confirmed: false, bytesSent: 100 });
  assert.equal(silent.state, "failed");
  assert.equal(silent.runningVersion, undefined);
  assert.match(silent.detail, /never reported which version it runs \(no banner\)/);
  const otherMcu = flashOutcome(avrdude, req, { confirmed: false, bootedVersion: "1.2.4", bytesSent: 100 });
  assert.equal(otherMcu.state, "failed");
  assert.match(otherMcu.detail, /but its banner named another MCU/);
});

test("flash outcome: an unconfirmed trial boot (Canopy bootloader) is rolled_back to the version that came up", () => {
  const r = flashOutcome(canopy, req, { confirmed: false, bootedVersion: "1.2.3", bytesSent: 100 });
  assert.deepEqual(r, { state: "rolled_back", detail: "1.2.4 did not confirm within 15000 ms; the bootloader reverted to 1.2.3", runningVersion: "1.2.3", bytesSent: 100 });
});
