import { connect, type NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode } from "@canopy/protocol";

export const DEFAULT_SERVER = "nats://127.0.0.1:4222";

export function serverUrl(flag: string | undefined): string {
  return flag ?? process.env.CANOPY_SERVER ?? DEFAULT_SERVER;
}

/** Connects an operator command or the gateway to the hub; a clear error when nothing answers. */
export async function connectHub(
  url: string,
  opts: { name?: string; daemon?: boolean } = {},
): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url,
      name: opts.name ?? "canopy-cli",
      timeout: 5_000,
      ...(opts.daemon ? { maxReconnectAttempts: -1, reconnectTimeWait: 1_000 } : { maxReconnectAttempts: 2 }),
    });
  } catch (err) {
    throw new CanopyError(
      ErrorCode.Unavailable,
      `cannot reach the hub at ${url} (${(err as Error).message}); start one with 'canopy hub start' or set --server / CANOPY_SERVER`,
      { cause: err },
    );
  }
}
