import { DEFAULT_SERVER } from "../../nats.js";
import { ContextStore } from "./store.js";

export interface TargetFlags {
  server?: string;
  creds?: string;
  tlsCa?: string;
  context?: string;
}

export interface Target {
  server: string;
  creds?: string;
  ca?: string;
  /** The context the target came from, when one was used. */
  context?: string;
  /** Where the server URL came from, for error messages and `doctor`. */
  from: "flag" | "env" | "context" | "default";
}

/**
 * The hub a command talks to. Precedence: flags > env (CANOPY_SERVER / CANOPY_CREDS / CANOPY_CONTEXT) >
 * the selected context > the default. A context named by --context or CANOPY_CONTEXT must exist.
 */
export async function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const store = new ContextStore();
  const named = flags.context ?? (env.CANOPY_CONTEXT || undefined);
  const name = named ?? (await store.selected());
  const ctx = name === undefined ? undefined : await store.get(name).catch((err: unknown) => {
    if (named !== undefined) throw err;
    return undefined; // a selected context that was removed by hand: fall through to the default
  });
  // --context is a flag: its values beat the environment's; a selected context does not.
  const envServer = flags.context && ctx ? undefined : env.CANOPY_SERVER || undefined;
  const envCreds = flags.context && ctx ? undefined : env.CANOPY_CREDS || undefined;
  const server = flags.server ?? envServer ?? ctx?.server ?? DEFAULT_SERVER;
  const from = flags.server ? "flag" : envServer ? "env" : ctx ? "context" : "default";
  const creds = flags.creds ?? envCreds ?? ctx?.creds;
  const ca = flags.tlsCa ?? (flags.context && ctx ? undefined : env.CANOPY_TLS_CA || undefined) ?? ctx?.ca;
  return {
    server,
    ...(creds ? { creds } : {}),
    ...(ca ? { ca } : {}),
    ...(ctx && name ? { context: name } : {}),
    from,
  };
}
