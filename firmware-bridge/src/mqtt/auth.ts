import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { readFileSync } from "node:fs";
import { CanopyError, ErrorCode } from "@canopy/protocol";

/**
 * MQTT passwords are stored only as `scrypt$<N>$<salt b64>$<hash b64>` (`canopy bridge hash-password`).
 * N = 2^14 keeps a CONNECT under ~50 ms on a Pi 4; MCUs connect rarely.
 */
const KEYLEN = 32;

function scrypt(password: Buffer, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, KEYLEN, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, N = 16384): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(Buffer.from(password, "utf8"), salt, { N });
  return `scrypt$${N}$${salt.toString("base64")}$${key.toString("base64")}`;
}

export async function verifyPassword(password: Buffer, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const want = Buffer.from(m[3] as string, "base64");
  const got = await scrypt(password, Buffer.from(m[2] as string, "base64"), { N: Number(m[1]), maxmem: 256 * 2 ** 20 });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Reads `user:scrypt$…` lines (blank lines and `#` comments ignored). */
export function loadUsersFile(path: string): Record<string, string> {
  const users: Record<string, string> = {};
  const text = readFileSync(path, "utf8");
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const at = line.indexOf(":");
    if (at <= 0 || !line.slice(at + 1).startsWith("scrypt$")) {
      throw new CanopyError(ErrorCode.InvalidInput, `${path}:${i + 1}: expected user:scrypt$… (see canopy bridge hash-password)`);
    }
    users[line.slice(0, at)] = line.slice(at + 1);
  }
  return users;
}
