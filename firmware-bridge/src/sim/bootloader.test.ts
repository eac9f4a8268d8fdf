import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BootCodec, BootOp, BootStatus } from "../flash/canopy-protocol.js";
import { NEVER_CONFIRM_MARKER, SimBootloader } from "./bootloader.js";

function harness() {
  const reboots: string[] = [];
  const confirms: string[] = [];
  const bl = new SimBootloader("1.0.0", { reboot: (v) => reboots.push(v), sendConfirm: (v) => confirms.push(v), report: () => {} }, "rp2040");
  return { bl, reboots, confirms };
}
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("BEGIN resumes where the staging slot stops; out-of-order WRITEs are NAKed with the expected offset", () => {
  const { bl } = harness();
  const img = Buffer.alloc(2048, 7);
  assert.equal(BootCodec.parseOffset(bl.handle(BootOp.Begin, BootCodec.begin(sha(img), img.length, "2.0.0")).body), 0);
  assert.equal(bl.handle(BootOp.Write, BootCodec.write(0, img.subarray(0, 512))).status, BootStatus.Ok);
  const dup = bl.handle(BootOp.Write, BootCodec.write(0, img.subarray(0, 512)));
  assert.equal(dup.status, BootStatus.NakOffset);
  assert.equal(BootCodec.parseOffset(dup.body), 512);
  assert.equal(BootCodec.parseOffset(bl.handle(BootOp.Begin, BootCodec.begin(sha(img), img.length, "2.0.0")).body), 512);
  assert.equal(bl.duplicateWrites, 1);
});

test("FINISH reports the device's hash; a mismatch is never activated", () => {
  const { bl, reboots } = harness();
  const img = Buffer.alloc(1024, 1);
  bl.handle(BootOp.Begin, BootCodec.begin("ab".repeat(32), img.length, "2.0.0"));
  bl.handle(BootOp.Write, BootCodec.write(0, img.subarray(0, 512)));
  bl.handle(BootOp.Write, BootCodec.write(512, img.subarray(512)));
  const fin = bl.handle(BootOp.Finish, new Uint8Array());
  assert.equal(fin.status, BootStatus.BadHash);
  assert.equal(BootCodec.parseHash(fin.body), sha(img));
  assert.equal(bl.handle(BootOp.Activate, BootCodec.activate(true, 1000)).status, BootStatus.BadState);
  assert.deepEqual(reboots, []);
});

test("trial boot: confirmed keeps the new image; an image that never confirms is reverted; ACTIVATE is idempotent", async () => {
  for (const bad of [false, true]) {
    const { bl, reboots, confirms } = harness();
    const img = Buffer.alloc(600, 3);
    if (bad) img.write(NEVER_CONFIRM_MARKER, 10, "latin1");
    bl.handle(BootOp.Begin, BootCodec.begin(sha(img), img.length, "2.0.0"));
    bl.handle(BootOp.Write, BootCodec.write(0, img.subarray(0, 512)));
    bl.handle(BootOp.Write, BootCodec.write(512, img.subarray(512)));
    assert.equal(bl.handle(BootOp.Finish, new Uint8Array()).status, BootStatus.Ok);
    assert.equal(bl.handle(BootOp.Activate, BootCodec.activate(true, 300)).status, BootStatus.Ok);
    assert.equal(bl.handle(BootOp.Activate, BootCodec.activate(true, 300)).status, BootStatus.Ok, "a resent ACTIVATE");
    await sleep(100);
    if (!bad) {
      assert.deepEqual(confirms.slice(0, 1), ["2.0.0"]);
      bl.handle(BootOp.Confirm, new Uint8Array());
    }
    await sleep(400);
    assert.deepEqual(reboots, bad ? ["2.0.0", "1.0.0"] : ["2.0.0"]);
    assert.equal(bl.active.version, bad ? "1.0.0" : "2.0.0");
    bl.stop();
  }
});
