import { readFile } from "node:fs/promises";
import { connect, type Authenticator, type NatsConnection } from "@nats-io/transport-node";
import { fastCredsAuthenticator } from "@canopy/protocol/nats/creds";
import { CanopyError, ErrorCode, Subjects } from "@canopy/protocol";

export const DEFAULT_SERVER = "nats://127.0.0.1:4222";

/** How to reach the hub: URL, credentials file (JWT + seed) and, for a TLS client port, the CA. */
export interface HubTarget {
  server: string;
  creds?: string;
  ca?: string;
}

/** Connects an operator command or the gateway to the hub; a clear error when nothing answers. */
export async function connectHub(
  t: HubTarget,
  opts: { name?: string; daemon?: boolean } = {},
): Promise<NatsConnection> {
  const auth = await authOptions(t);
  try {
    return await connect({
      servers: t.server,
      name: opts.name ?? "canopy-cli",
      timeout: 20_000,
      // Devices may publish replies only to the operator side's inboxes, never to each other's.
      inboxPrefix: Subjects.hubInboxPrefix,
      // nats.js would otherwise build two Error objects (for async stack traces) per request, i.e. per
      // JetStream publish and KV write: 15 % of the gateway's CPU under a command load. Error messages
      // are unchanged; only the caller's async frames are missing from a timeout's stack.
      noAsyncTraces: true,
      ...auth,
      // A slow handshake on a loaded hub has the 20 s timeout; a refused port fails at once (no
      // waitOnFirstConnect: it kept `canopy devices` against a dead hub retrying past 30 s).
      ...(opts.daemon ? { maxReconnectAttempts: -1, reconnectTimeWait: 1_000 } : { maxReconnectAttempts: 2, reconnectTimeWait: 500 }),
    });
  } catch (err) {
    const msg = (err as Error).message;
    const hint = /authoriz|authenticat/i.test(msg)
      ? t.creds
        ? `the hub refused the credentials in ${t.creds}`
        : "the hub requires credentials: pass --creds FILE or set CANOPY_CREDS (a hub writes <data>/creds/admin.creds)"
      : "start one with 'canopy hub start' or set --server / CANOPY_SERVER";
    throw new CanopyError(ErrorCode.Unavailable, `cannot reach the hub at ${t.server} (${msg}); ${hint}`, { cause: err });
  }
}

interface AuthOptions {
  authenticator?: Authenticator;
  tls?: { caFile?: string };
}

async function authOptions(t: HubTarget): Promise<AuthOptions> {
  const out: AuthOptions = {};
  if (t.creds) {
    let creds: Uint8Array;
    try {
      creds = await readFile(t.creds);
    } catch (err) {
      throw new CanopyError(ErrorCode.InvalidInput, `cannot read credentials ${t.creds}: ${(err as Error).message}`, { cause: err });
    }
    out.authenticator = fastCredsAuthenticator(creds);
  }
  if (t.ca) out.tls = { caFile: t.ca };
  else if (t.server.startsWith("tls://")) out.tls = {};
  return out;
}
