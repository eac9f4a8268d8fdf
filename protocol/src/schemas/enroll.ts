import { z } from "zod";
import { CanopyError, ErrorCode } from "../errors.js";
import { Id, describeIssues } from "./common.js";

/**
 * What a device needs to join the fleet, made by `canopy device add --bundle FILE` (or printed as a
 * one-line join token): its id, the hub's leafnode URLs (every hub node), its NATS user credentials
 * (JWT + seed: the secret), and the leaf-link TLS material (CA, client certificate and key).
 */
export const EnrollBundle = z.object({
  v: z.literal(1),
  device: Id,
  hub: z.array(z.string().regex(/^(nats-leaf|tls):\/\/[^\s,]+$/, "must be nats-leaf://HOST:PORT or tls://HOST:PORT")).min(1),
  creds: z.string().min(1).max(16_384),
  ca: z.string().max(16_384).optional(),
  cert: z.string().max(16_384).optional(),
  key: z.string().max(16_384).optional(),
});
export type EnrollBundle = z.infer<typeof EnrollBundle>;

const TOKEN_PREFIX = "canopy1.";

export function parseBundle(value: unknown, what = "enrollment bundle"): EnrollBundle {
  const r = EnrollBundle.safeParse(value);
  if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, `${what}: ${describeIssues(r.error)}`);
  return r.data;
}

/** One line, safe to paste into a shell: `canopy1.<base64url(JSON bundle)>`. */
export function encodeJoinToken(b: EnrollBundle): string {
  return TOKEN_PREFIX + Buffer.from(JSON.stringify(b)).toString("base64url");
}

export function decodeJoinToken(token: string): EnrollBundle {
  const t = token.trim();
  if (!t.startsWith(TOKEN_PREFIX) || t.length > 64_000) {
    throw new CanopyError(ErrorCode.InvalidInput, "join token: not a Canopy join token (expected canopy1.…)");
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(t.slice(TOKEN_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    throw new CanopyError(ErrorCode.InvalidInput, "join token: damaged (not base64url JSON)");
  }
  return parseBundle(json, "join token");
}
