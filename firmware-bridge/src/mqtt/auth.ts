import { readFileSync } from "node:fs";
import type { Database } from "lmdb";
import { CanopyError, ErrorCode, verifySecret } from "@canopy/protocol";

/** Reads `user:scrypt$…` lines (blank lines and `#` comments ignored); see `canopy bridge hash-password`. */
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

export interface AuthPolicy {
  /** Per-MCU credentials (`canopy mcu creds`): client id → scrypt hash. The user name must be the client id. */
  creds: Database<string, string>;
  /** The operator's users file: user name → scrypt hash, for any client id. */
  users: Record<string, string>;
  /** Accept clients that have neither (development only; the bridge warns loudly). */
  anonymous: boolean;
}

export type AuthResult = "ok" | "denied";

/**
 * Decides a CONNECT. A client id with per-MCU credentials must present exactly those (user name =
 * client id): a users-file entry or anonymous mode never lets another client into that MCU's session.
 * Unknown clients are refused without running scrypt, so a flood of made-up ids costs no CPU.
 */
export async function authenticate(p: AuthPolicy, clientId: string, username: string | undefined, password: Buffer | undefined): Promise<AuthResult> {
  const bound = p.creds.get(clientId);
  if (bound !== undefined) {
    return username === clientId && password !== undefined && (await verifySecret(password, bound)) ? "ok" : "denied";
  }
  if (username !== undefined) {
    const stored = p.users[username];
    if (stored === undefined || password === undefined) return p.anonymous && password === undefined ? "ok" : "denied";
    return (await verifySecret(password, stored)) ? "ok" : "denied";
  }
  return p.anonymous ? "ok" : "denied";
}
