import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { CanopyError, ErrorCode, firmwareSigningPayload, type FirmwareManifest } from "@canopy/protocol";

/**
 * The fleet's firmware signing key (Ed25519, node:crypto). The private key stays with the operator
 * (a PEM file, mode 0600, never sent to the hub); the public key goes to every device as fleet config
 * `firmware.signingKey`, and from then on a device flashes only images whose manifest it signed.
 */
export interface SigningKeyPair {
  /** Public key, 32 raw bytes base64url (the config value). */
  publicKey: string;
  privatePem: string;
}

export function generateSigningKey(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  return { publicKey: publicKeyText(publicKey), privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
}

/** Writes the private key; an existing file is never overwritten (it may be the only copy of a key). */
export async function writePrivateKey(path: string, pem: string): Promise<void> {
  try {
    await writeFile(path, pem, { mode: 0o600, flag: "wx" });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new CanopyError(ErrorCode.InvalidInput, `${path} exists; not overwriting a key (choose another --out)`);
    throw new CanopyError(ErrorCode.InvalidInput, `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export async function loadPrivateKey(path: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (err) {
    throw new CanopyError(ErrorCode.InvalidInput, `cannot read signing key ${path}: ${(err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new CanopyError(ErrorCode.InvalidInput, `${path} is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new CanopyError(ErrorCode.InvalidInput, `${path} is a ${key.asymmetricKeyType ?? "unknown"} key; firmware signing keys are Ed25519 (canopy firmware keygen)`);
  return key;
}

/** The manifest with its signature and the signer's public key. */
export function signManifest(m: FirmwareManifest, key: KeyObject): FirmwareManifest {
  const signature = sign(null, Buffer.from(firmwareSigningPayload(m)), key).toString("base64url");
  return { ...m, signature, signedBy: publicKeyText(createPublicKey(key)) };
}

function publicKeyText(k: KeyObject): string {
  const x = k.export({ format: "jwk" }).x;
  if (!x) throw new CanopyError(ErrorCode.Internal, "Ed25519 key without a public part");
  return x;
}
