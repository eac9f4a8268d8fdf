import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { stat } from "node:fs/promises";
import type { FirmwareManifest } from "@canopy/protocol";
import { json, type Fleet } from "../harness/index.js";
import { waitApplied } from "../e2e/config-helpers.js";
import { FlashFixture } from "./flash-fixture.js";

/**
 * Ed25519 firmware signatures end to end: `canopy firmware keygen` (private key to a file, public key
 * to the fleet's config) → `firmware upload --sign-key` → `canopy flash` → the agent checks the
 * signature against the fleet key it applied before it downloads or flashes anything.
 */
const fx = new FlashFixture("pi-s", "canopy-fw-sign-", { m1: [] });
let fleet: Fleet;
const DEV = fx.device;
const begins = (): number => fx.sims.m1!.output.filter((l) => l.includes('"event":"boot-begin"')).length;

before(async () => {
  await fx.start();
  fleet = fx.fleet;
});
after(() => fx.stop());

async function upload(name: string, version: string, key?: string): Promise<FirmwareManifest> {
  const img = await fx.image(name, 4096);
  const r = await fleet.cli(["firmware", "upload", img.path, "--board", "rp2040", "--fw-version", version, "--json", ...(key ? ["--sign-key", key] : [])]);
  assert.equal(r.code, 0, r.stderr);
  return json<FirmwareManifest>(r);
}

test("with a fleet signing key the device flashes only images it signed: unsigned, other-key and tampered images fail and never reach the MCU", async () => {
  const unsigned = await upload("u.bin", "1.1.0");
  assert.equal(unsigned.signature, undefined);

  const keyFile = join(fx.dir.path, "fleet.pem");
  const gen = json<{ publicKey: string; fleet: boolean }>(await fleet.cli(["firmware", "keygen", "--out", keyFile, "--json"]));
  assert.match(gen.publicKey, /^[A-Za-z0-9_-]{43}$/);
  assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
  const again = await fleet.cli(["firmware", "keygen", "--out", keyFile]);
  assert.equal(again.code, 2, "an existing key file is never overwritten");
  const otherFile = join(fx.dir.path, "other.pem");
  assert.equal((await fleet.cli(["firmware", "keygen", "--out", otherFile, "--no-fleet"])).code, 0);
  await waitApplied(fleet, DEV, "firmware.signingKey", gen.publicKey, 60_000);

  const good = await upload("g.bin", "1.2.0", keyFile);
  assert.equal(good.signedBy, gen.publicKey);
  assert.match(good.signature ?? "", /^[A-Za-z0-9_-]{86}$/);
  const ok = await fx.flash("m1", "1.2.0");
  assert.equal(ok.final.state, "confirmed", ok.final.detail);
  assert.equal(begins(), 1);

  const refusedUnsigned = await fx.flash("m1", "1.1.0");
  assert.equal(refusedUnsigned.final.state, "failed");
  assert.match(refusedUnsigned.final.detail, /^unsigned image: the fleet has a signing key .* rp2040@1\.1\.0 carries no signature; not flashed$/);

  await upload("o.bin", "1.3.0", otherFile);
  const otherKey = await fx.flash("m1", "1.3.0");
  assert.equal(otherKey.final.state, "failed");
  assert.match(otherKey.final.detail, /^bad signature: rp2040@1\.3\.0 .*not signed by the fleet key/);

  // Tampered: 1.2.0's valid signature on the manifest of another image (its sha256 and size).
  const forged = await fleet.cli(["cmd", "send", "--device", DEV, "firmware.flash", "--wait", "--timeout", "60s", "--json", "--args",
    JSON.stringify({ mcu: "m1", board: "rp2040", version: "1.2.0", sha256: unsigned.sha256, size: unsigned.size, format: "bin", signature: good.signature })], 90_000);
  const [rec] = json<Array<{ state: string; error?: { message: string } }>>(forged);
  assert.equal(rec?.state, "failed");
  assert.match(rec?.error?.message ?? "", /^failed: bad signature: rp2040@1\.2\.0 .*not flashed$/);

  assert.equal(begins(), 1, "no refused image reached the MCU's bootloader");
  const rows = json<Array<{ id: string; firmware: string; imageSha256?: string }>>(await fleet.cli(["mcu", "list", "--device", DEV, "--json"]));
  assert.deepEqual(rows.map((r) => [r.id, r.firmware, r.imageSha256]), [["m1", "1.2.0", good.sha256]]);
});
