import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectHub, serverUrl } from "../nats.js";

/** Runs `fn` with a hub connection made from the global --server option, and drains it after. */
export async function withHub<T>(cmd: Command, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const url = serverUrl(cmd.optsWithGlobals<{ server?: string }>().server);
  const nc = await connectHub(url);
  try {
    return await fn(nc);
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

export function globals(cmd: Command): { server: string; logLevel: string | undefined } {
  const o = cmd.optsWithGlobals<{ server?: string; logLevel?: string }>();
  return { server: serverUrl(o.server), logLevel: o.logLevel };
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
