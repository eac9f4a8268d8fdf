import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectOperator } from "./connect-check.js";
import { resolveTarget, type Target } from "./contexts/resolve.js";

/** The hub this command targets: --server/--creds/--context, env, the selected context, the default. */
export function targetOf(cmd: Command): Promise<Target> {
  const o = cmd.optsWithGlobals<{ server?: string; creds?: string; tlsCa?: string; context?: string }>();
  return resolveTarget({
    ...(o.server ? { server: o.server } : {}),
    ...(o.creds ? { creds: o.creds } : {}),
    ...(o.tlsCa ? { tlsCa: o.tlsCa } : {}),
    ...(o.context ? { context: o.context } : {}),
  });
}

/** Runs `fn` with a checked hub connection (see connect-check.ts), and drains it after. */
export async function withHub<T>(cmd: Command, fn: (nc: NatsConnection) => Promise<T>, opts: { reconnect?: boolean } = {}): Promise<T> {
  const nc = await connectOperator(await targetOf(cmd), opts);
  try {
    return await fn(nc);
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

/** The hub to reach and the log level, from the global options. */
export async function globals(cmd: Command): Promise<{ server: string; target: Target; logLevel: string | undefined }> {
  const target = await targetOf(cmd);
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
