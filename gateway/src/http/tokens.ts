import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CanopyError, ErrorCode } from "@canopy/protocol";

/** What a verified console token grants. */
export interface Session {
  id: string;
  readOnly: boolean;
  issuedAt: number;
  expiresAt: number;
}

export interface MintedToken extends Session {
  token: string;
}

const PREFIX = "cnp1";
export const DEFAULT_TOKEN_TTL_MS = 12 * 3600_000;
export const MAX_TOKEN_TTL_MS = 90 * 86_400_000;

const b64 = (b: Buffer | string): string => Buffer.from(b).toString("base64url");

/**
 * Console tokens: `cnp1.<payload>.<hmac>`, the payload `{id, ro, iat, exp}` signed with HMAC-SHA256
 * under a 32-byte secret kept 0600 in `<hub data>/console/secret`. Nothing else is stored per token;
 * a revoked id is kept (in `revoked.json`, 0600) only until the token would have expired anyway, so
 * the list stays bounded. Rotating the secret revokes every token at once.
 */
export class ConsoleTokens {
  private constructor(
    private readonly dir: string,
    private secret: Buffer,
    private readonly revoked: Map<string, number>,
  ) {}

  static async open(dataDir: string): Promise<ConsoleTokens> {
    const dir = join(dataDir, "console");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let secret: Buffer;
    try {
      secret = Buffer.from((await readFile(join(dir, "secret"), "utf8")).trim(), "base64url");
      if (secret.length < 32) throw new Error("short secret");
    } catch {
      secret = randomBytes(32);
      await writePrivate(join(dir, "secret"), b64(secret));
    }
    const revoked = new Map<string, number>();
    try {
      const list = JSON.parse(await readFile(join(dir, "revoked.json"), "utf8")) as Record<string, number>;
      for (const [id, exp] of Object.entries(list)) if (typeof exp === "number") revoked.set(id, exp);
    } catch {
      /* none revoked yet */
    }
    return new ConsoleTokens(dir, secret, revoked);
  }

  mint(o: { readOnly: boolean; ttlMs?: number }, now = Date.now()): MintedToken {
    const ttlMs = o.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    if (!(Number.isInteger(ttlMs) && ttlMs > 0 && ttlMs <= MAX_TOKEN_TTL_MS)) {
      throw new CanopyError(ErrorCode.InvalidInput, "token lifetime must be more than 0 and at most 90d");
    }
    const session: Session = { id: randomBytes(6).toString("hex"), readOnly: o.readOnly, issuedAt: now, expiresAt: now + ttlMs };
    const payload = b64(JSON.stringify({ id: session.id, ro: session.readOnly, iat: session.issuedAt, exp: session.expiresAt }));
    return { ...session, token: `${PREFIX}.${payload}.${this.sign(payload)}` };
  }

  /** The session a token grants, or undefined (malformed, bad signature, expired, revoked). */
  verify(token: string | undefined, now = Date.now()): Session | undefined {
    if (!token || token.length > 512) return undefined;
    const [prefix, payload, sig, extra] = token.split(".");
    if (prefix !== PREFIX || !payload || !sig || extra !== undefined) return undefined;
    const want = Buffer.from(this.sign(payload));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    let claims: { id?: unknown; ro?: unknown; iat?: unknown; exp?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof claims;
    } catch {
      return undefined;
    }
    const { id, ro, iat, exp } = claims;
    if (typeof id !== "string" || typeof ro !== "boolean" || typeof iat !== "number" || typeof exp !== "number") return undefined;
    if (exp <= now || this.revoked.has(id)) return undefined;
    return { id, readOnly: ro, issuedAt: iat, expiresAt: exp };
  }

  /** Revokes one token by id (its expiry bounds how long the id is remembered). */
  async revoke(id: string, expiresAt = Date.now() + MAX_TOKEN_TTL_MS, now = Date.now()): Promise<void> {
    for (const [k, exp] of this.revoked) if (exp <= now) this.revoked.delete(k);
    this.revoked.set(id, expiresAt);
    await writePrivate(join(this.dir, "revoked.json"), JSON.stringify(Object.fromEntries(this.revoked)));
  }

  /** A new secret: every token minted before is void. */
  async rotate(): Promise<void> {
    this.secret = randomBytes(32);
    await writePrivate(join(this.dir, "secret"), b64(this.secret));
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.secret).update(`${PREFIX}.${payload}`).digest("base64url");
  }
}

/** Write-then-rename with mode 0600 from the start, so the secret is never world-readable. */
async function writePrivate(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}
