import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Secrets (MQTT passwords) are stored and sent only as `scrypt$<N>$<salt b64>$<hash b64>`. Hashing
 * happens where the secret is made (the CLI), so the device, the CMD stream and the command's record
 * only ever hold the hash. N = 2^14 keeps a check under ~50 ms on a Pi 4; MCUs connect rarely.
 */
const KEYLEN = 32;
export const SCRYPT_HASH_RE = /^scrypt\$(\d{1,7})\$([A-Za-z0-9+/=]{1,64})\$([A-Za-z0-9+/=]{1,128})$/;

function scrypt(secret: Buffer, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(secret, salt, KEYLEN, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashSecret(secret: string, N = 16384): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(Buffer.from(secret, "utf8"), salt, { N });
  return `scrypt$${N}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/** False for a wrong secret and for a malformed or absurd (N outside 2^10…2^17) stored hash. */
export async function verifySecret(secret: Buffer, stored: string): Promise<boolean> {
  const m = SCRYPT_HASH_RE.exec(stored);
  const N = Number(m?.[1]);
  if (!m || !(N >= 1024 && N <= 131072) || (N & (N - 1)) !== 0) return false;
  const want = Buffer.from(m[3] as string, "base64");
  const got = await scrypt(secret, Buffer.from(m[2] as string, "base64"), { N, maxmem: 256 * 2 ** 20 });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A random password for a machine (24 URL-safe characters, 144 bits). */
export function newSecret(): string {
  return randomBytes(18).toString("base64url");
}
