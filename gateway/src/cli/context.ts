import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectHub, resolveHub, type HubTarget } from "../nats.js";

/** Runs `fn` with a hub connection made from the global --server/--creds/--tls-ca options, and drains it after. */
export async function withHub<T>(cmd: Command, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connectHub(hubTarget(cmd));
  try {
    return await fn(nc);
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

/** The hub to reach, from the global options (flags > env > selected context > default). */
export function hubTarget(cmd: Command): HubTarget {
  const o = cmd.optsWithGlobals<{ server?: string; creds?: string; tlsCa?: string }>();
  return resolveHub({ server: o.server, creds: o.creds, tlsCa: o.tlsCa });
}

export function globals(cmd: Command): { server: string; target: HubTarget; logLevel: string | undefined } {
  const target = hubTarget(cmd);
  return { server: target.server, target, logLevel: cmd.optsWithGlobals<{ logLevel?: string }>().logLevel };
}

/** Collects repeatable options: `--group a --group b`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Resolves when SIGINT or SIGTERM arrives; the returned signal aborts at the same moment. */
export function shutdownSignal(): { signal: AbortSignal; done: Promise<NodeJS.Signals> } {
  const ac = new AbortController();
  const done = new Promise<NodeJS.Signals>((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      ac.abort();
      resolve(sig);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
  return { signal: ac.signal, done };
}
