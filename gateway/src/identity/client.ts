import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, Subjects, decode, encode, parseBundle, type EnrollBundle } from "@canopy/protocol";
import { IdentityReply } from "./service.js";

/** Operator side of the identity service: ask the gateway holding the hub's keys to mint or revoke. */
export async function requestMint(nc: NatsConnection, device: string): Promise<{ userKey: string; bundle: EnrollBundle }> {
  const r = await call(nc, Subjects.identityMint, { device });
  if (!("userKey" in r)) throw new CanopyError(ErrorCode.Internal, "identity service: unexpected reply to mint");
  return { userKey: r.userKey, bundle: parseBundle(r.bundle) };
}

export async function requestRevoke(nc: NatsConnection, device: string, keep?: string): Promise<string[]> {
  const r = await call(nc, Subjects.identityRevoke, keep ? { device, keep } : { device });
  if (!("revoked" in r)) throw new CanopyError(ErrorCode.Internal, "identity service: unexpected reply to revoke");
  return r.revoked;
}

async function call(nc: NatsConnection, subject: string, body: object): Promise<Exclude<IdentityReply, { ok: false }>> {
  let data: Uint8Array;
  try {
    data = (await nc.request(subject, encode(body), { timeout: 15_000 })).data;
  } catch (err) {
    throw new CanopyError(
      ErrorCode.Unavailable,
      `no gateway with the hub's identity answered (${(err as Error).message}); run 'canopy hub start' or 'canopy gateway --identity DIR'`,
      { cause: err },
    );
  }
  const r = decode(IdentityReply, data, 256 * 1024);
  if (!r.ok) throw new CanopyError(r.error.code as ErrorCode, r.error.message);
  return r;
}
