import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { CanopyError, ErrorCode, firmwareSigningPayload } from "@canopy/protocol";
import { checkFlashSignature, fleetSigningKey } from "./verify.js";

const pair = (): { pub: string; signFor: (m: Parameters<typeof firmwareSigningPayload>[0]) => string } => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  return { pub: publicKey.export({ format: "jwk" }).x!, signFor: (m) => sign(null, Buffer.from(firmwareSigningPayload(m)), privateKey).toString("base64url") };
};
const image = { board: "rp2040", version: "1.2.0", format: "bin" as const, size: 4096, sha256: "ab".repeat(32) };
const rejected = (re: RegExp) => (e: unknown) => e instanceof CanopyError && e.code === ErrorCode.Rejected && re.test(e.message);

test("no fleet key: images are not checked (signing is optional)", () => {
  assert.doesNotThrow(() => checkFlashSignature(image, undefined));
  assert.equal(fleetSigningKey({ "log.level": "info" }), undefined);
  assert.equal(fleetSigningKey(undefined), undefined);
});

test("with a fleet key: signed by it passes; unsigned, another key, or any field changed is refused", () => {
  const fleet = pair();
  const other = pair();
  assert.equal(fleetSigningKey({ "firmware.signingKey": fleet.pub }), fleet.pub);
  const signature = fleet.signFor(image);
  assert.doesNotThrow(() => checkFlashSignature({ ...image, signature }, fleet.pub));
  assert.throws(() => checkFlashSignature(image, fleet.pub), rejected(/^unsigned image: .*rp2040@1\.2\.0 carries no signature; not flashed$/));
  assert.throws(() => checkFlashSignature({ ...image, signature: other.signFor(image) }, fleet.pub), rejected(/^bad signature: .*not signed by the fleet key/));
  for (const change of [{ sha256: "cd".repeat(32) }, { version: "1.2.1" }, { size: 4097 }, { board: "uno" }, { format: "hex" as const }]) {
    assert.throws(() => checkFlashSignature({ ...image, ...change, signature }, fleet.pub), rejected(/^bad signature/), JSON.stringify(change));
  }
  assert.throws(() => checkFlashSignature({ ...image, signature: "x" }, fleet.pub), rejected(/^bad signature/));
  assert.throws(() => checkFlashSignature({ ...image, signature }, "short"), /malformed/);
});
