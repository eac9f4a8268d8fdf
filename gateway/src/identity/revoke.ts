import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode } from "@canopy/protocol";
import { encodeCanopyAccount, revocationsOf, type Revocations } from "./account.js";
import { saveAccountJwt, type Identity } from "./init.js";

/**
 * Revocation: the CANOPY account JWT is re-signed with the user keys added to its revocation list and
 * pushed to the full resolver over `$SYS.REQ.CLAIMS.UPDATE` (system user). The server drops the
 * revoked users' connections at once (tens of ms) and the resolver keeps the JWT across restarts.
 * The list is cumulative: it starts from the JWT the resolver holds (another gateway may have revoked
 * since) merged with ours, so a revocation is never lost by a later one.
 */
export class Revoker {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly identity: Identity,
    private readonly hubUrl: string,
  ) {}

  /** Revokes `userKeys` (all JWTs issued to them up to now). Serialized within this process. */
  revoke(userKeys: string[]): Promise<void> {
    const run = this.chain.then(() => this.revokeNow(userKeys));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async revokeNow(userKeys: string[]): Promise<void> {
    if (userKeys.length === 0) return;
    const sys = await this.sysConnection();
    try {
      const current = await this.lookup(sys);
      const revocations: Revocations = { ...revocationsOf(this.identity.account.jwt), ...(current ? revocationsOf(current) : {}) };
      // A JWT issued in the same second as the revocation is revoked too (issued-at ≤ revoked-at).
      const now = Math.floor(Date.now() / 1000) + 1;
      for (const k of userKeys) revocations[k] = now;
      const jwt = await encodeCanopyAccount(this.identity.account.kp, this.identity.operator.kp, this.identity.account.signing.getPublicKey(), revocations);
      await this.push(sys, jwt);
      await saveAccountJwt(this.identity, jwt);
    } finally {
      await sys.close();
    }
  }

  private async sysConnection(): Promise<NatsConnection> {
    try {
      return await connect({
        servers: this.hubUrl,
        name: "canopy-identity",
        timeout: 5_000,
        authenticator: credsAuthenticator(await readFile(this.identity.sysCreds)),
        ...(await tlsFor(this.identity, this.hubUrl)),
      });
    } catch (err) {
      throw new CanopyError(ErrorCode.Unavailable, `cannot reach the hub as the system user: ${(err as Error).message}`, { cause: err });
    }
  }

  private async lookup(sys: NatsConnection): Promise<string | undefined> {
    try {
      const m = await sys.request(`$SYS.REQ.ACCOUNT.${this.identity.account.pub}.CLAIMS.LOOKUP`, "", { timeout: 3_000 });
      const text = m.string().trim();
      return text.startsWith("ey") ? text : undefined;
    } catch {
      return undefined;
    }
  }

  private async push(sys: NatsConnection, jwt: string): Promise<void> {
    const m = await sys.request("$SYS.REQ.CLAIMS.UPDATE", jwt, { timeout: 5_000 });
    const r = m.json<{ data?: { code?: number; message?: string }; error?: { code?: number; description?: string } }>();
    if (r.error || (r.data?.code !== undefined && r.data.code !== 200)) {
      throw new CanopyError(ErrorCode.Internal, `the hub refused the account update: ${r.error?.description ?? r.data?.message ?? "unknown"}`);
    }
  }
}

/** TLS options for a connection to the hub's client port when that port runs TLS. */
async function tlsFor(identity: Identity, url: string): Promise<{ tls?: { caFile: string } }> {
  return url.startsWith("tls://") ? { tls: { caFile: identity.tls.caCert } } : {};
}
