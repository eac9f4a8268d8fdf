import { test } from "node:test";
import assert from "node:assert/strict";
import type { CommandRecord } from "@canopy/protocol";
import type { DeviceView } from "../registry/devices.js";
import { health, needsFlashBack } from "./rollout-target.js";
import { parseGate, unitCommandId, type FirmwareRollout } from "./rollout-model.js";

const T = 1_800_000_000_000;
const SHA = "ab".repeat(32);
const r = { id: "fabc", version: "2.0.0", sha256: SHA, gate: { kind: "confirmed-and-online", soakMs: 60_000 } } as FirmwareRollout;
const rec = (state: CommandRecord["state"], at = T, message?: string): CommandRecord =>
  ({ id: "c", device: "d1", name: "firmware.flash", args: {}, createdAt: T - 10_000, ttlMs: 1, state, times: { [state]: at }, updatedAt: at, ...(message ? { error: { code: "x", message } } : {}) }) as CommandRecord;
const flashed = { state: "confirmed", version: "2.0.0", sha256: SHA, at: T, detail: "" };
const dev = (online: boolean, seenAt: number, mcu?: { firmware: string; online: boolean; lastFlash?: typeof flashed | undefined }): DeviceView =>
  ({ record: { id: "d1" }, online, lastSeenMs: 0, status: { seenAt, reportedAt: seenAt, mcus: mcu ? [{ id: "m1", board: "rp2040", link: "serial", firstSeen: T, lastSeen: seenAt, lastFlash: flashed, ...mcu }] : [] } }) as unknown as DeviceView;

test("firmware gate: waiting until the flash ends, failed with its reason, ok only after the soak on the new version", () => {
  assert.deepEqual(health(r, "d1/m1", undefined, dev(true, T), T), { result: "waiting" });
  assert.deepEqual(health(r, "d1/m1", rec("running"), dev(false, T), T), { result: "offline" });
  assert.deepEqual(health(r, "d1/m1", rec("failed", T, "rolled_back: did not confirm"), dev(true, T), T), { result: "failed", error: "rolled_back: did not confirm" });
  // A report older than the confirm, or one whose MCU list does not carry this flash yet, says nothing.
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T - 1, { firmware: "1.0.0", online: true }), T + 1), { result: "waiting" });
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 1, { firmware: "1.0.0", online: true, lastFlash: undefined }), T + 2), { result: "waiting" });
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 40_000, { firmware: "1.0.0", online: true, lastFlash: undefined }), T + 40_000), { result: "failed", error: "confirmed 2.0.0, but the device's reports never showed it" });
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 1, { firmware: "2.0.0", online: true }), T + 30_000), { result: "waiting" }, "soaking");
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 59_000, { firmware: "2.0.0", online: true }), T + 60_000), { result: "ok" });
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 1, { firmware: "1.0.0", online: true }), T + 2), { result: "waiting" }, "hello not seen yet");
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 40_000, { firmware: "1.0.0", online: true }), T + 40_000), { result: "failed", error: "confirmed 2.0.0, then reported 1.0.0" });
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 1, { firmware: "2.0.0", online: false }), T + 5_000), { result: "waiting" }, "link reopening");
  assert.deepEqual(health(r, "d1/m1", rec("succeeded"), dev(true, T + 40_000, { firmware: "2.0.0", online: false }), T + 40_000), { result: "failed", error: "confirmed 2.0.0, then stopped reporting" });
});

test("gate and command ids: parsed at the door; one fixed id per MCU and purpose", () => {
  assert.deepEqual(parseGate("confirmed-and-online:5m"), { kind: "confirmed-and-online", soakMs: 300_000 });
  assert.deepEqual(parseGate("confirmed-and-online"), { kind: "confirmed-and-online", soakMs: 0 });
  assert.throws(() => parseGate("applied:5m"), /expected confirmed-and-online/);
  const a = unitCommandId(r, "d1/m1", "flash");
  assert.equal(a, unitCommandId(r, "d1/m1", "flash"));
  assert.notEqual(a, unitCommandId(r, "d1/m2", "flash"));
  assert.notEqual(a, unitCommandId(r, "d1/m1", "back"));
  assert.match(a, /^[A-Za-z0-9_-]{1,64}$/);
});

test("after a halt: flash back what took the new image, not what the bootloader reverted or never got it", () => {
  assert.equal(needsFlashBack({ state: "succeeded" }, "2.0.0", "1.0.0"), true);
  assert.equal(needsFlashBack({ state: "failed" }, "1.0.0", "1.0.0"), false, "reverted by its bootloader / never written");
  assert.equal(needsFlashBack({ state: "failed" }, "2.0.0", "1.0.0"), true, "avrdude: unconfirmed but written");
  assert.equal(needsFlashBack({ state: "failed" }, undefined, "1.0.0"), false);
  assert.equal(needsFlashBack(undefined, "1.0.0", "1.0.0"), false);
});
