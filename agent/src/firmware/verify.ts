import { createPublicKey, verify } from "node:crypto";
import { CanopyError, ErrorCode, SIGNING_KEY_PATTERN, firmwareSigningPayload, type FlashArgs } from "@canopy/protocol";

/** The fleet's firmware signing key from the applied config (`firmware.signingKey`), if it has one. */
export function fleetSigningKey(effective: unknown): string | undefined {
  const v = (effective as Record<string, unknown> | undefined)?.["firmware.signingKey"];
  return typeof v === "string" ? v : undefined;
}

/**
 * Before anything is downloaded or flashed: when the fleet has a signing key, the flash must carry a
 * signature of the manifest (board, version, format, size, sha256) by that key. The sha256 is then
 * checked against the downloaded image, so the signature covers the bytes that reach the MCU.
 * Without a fleet key, images are not checked (signing is optional).
 */
export function checkFlashSignature(a: Pick<FlashArgs, "board" | "version" | "format" | "size" | "sha256" | "signature">, fleetKey: string | undefined): void {
  if (fleetKey === undefined) return;
  if (!SIGNING_KEY_PATTERN.test(fleetKey)) throw new CanopyError(ErrorCode.InvalidInput, `the fleet signing key in config is malformed; refusing to flash ${a.board}@${a.version}`);
  if (!a.signature) {
    throw new CanopyError(ErrorCode.Rejected, `unsigned image: the fleet has a signing key (${fleetKey.slice(0, 8)}…) and ${a.board}@${a.version} carries no signature; not flashed`);
  }
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: fleetKey }, format: "jwk" });
  const ok = /^[A-Za-z0-9_-]{86}$/.test(a.signature) && verify(null, Buffer.from(firmwareSigningPayload(a)), key, Buffer.from(a.signature, "base64url"));
  if (!ok) {
    throw new CanopyError(ErrorCode.Rejected, `bad signature: ${a.board}@${a.version} (sha256 ${a.sha256.slice(0, 12)}…) was not signed by the fleet key ${fleetKey.slice(0, 8)}… (tampered, or signed by another key); not flashed`);
  }
}
