import type { KeyPair } from "@nats-io/nkeys";
import { decode, encodeAccount } from "@nats-io/jwt";

/**
 * Account JWTs. `encodeAccount` sets no default limits, and a missing limit means 0 to the server: every
 * limit is -1 (unlimited) unless stated. Consumers are capped: a device may create consumers on the
 * hub (its mirrors), with any deliver subject, so the cap is what bounds a rogue device there.
 */
export const MAX_ACCOUNT_CONSUMERS = 100_000;

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export type Revocations = Record<string, number>;

export async function encodeCanopyAccount(
  account: KeyPair,
  operator: KeyPair,
  signingKey: string,
  revocations: Revocations,
): Promise<string> {
  return encodeAccount(
    "CANOPY",
    account,
    {
      limits: {
        ...UNLIMITED,
        mem_storage: -1,
        disk_storage: -1,
        streams: -1,
        consumer: MAX_ACCOUNT_CONSUMERS,
        mem_max_stream_bytes: -1,
        disk_max_stream_bytes: -1,
        max_ack_pending: -1,
      },
      signing_keys: [signingKey],
      ...(Object.keys(revocations).length ? { revocations } : {}),
    },
    { signer: operator },
  );
}

export async function encodeSystemAccount(sys: KeyPair, operator: KeyPair): Promise<string> {
  return encodeAccount("SYS", sys, { limits: UNLIMITED }, { signer: operator });
}

/** The revocation list an account JWT carries (user public key → revoked-before, seconds). */
export function revocationsOf(accountJwt: string): Revocations {
  const claims = decode<{ revocations?: Revocations }>(accountJwt);
  return { ...(claims.nats.revocations ?? {}) };
}
