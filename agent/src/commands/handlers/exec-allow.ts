import { readFileSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { HandlerContext } from "../registry.js";

/** Where the device's own exec allowlist lives unless the agent's local config says otherwise. */
export const DEFAULT_EXEC_ALLOW_FILE = "/etc/canopy/exec.allow";

export interface LocalAllowlist {
  paths: string[];
  /** Why the file contributed nothing (missing, not root-owned, writable by others), if so. */
  problem?: string;
}

/**
 * The local allowlist: one absolute path per line (`#` comments) in a file owned by root and writable
 * by nobody else, because whoever can write it can run code as the agent. Anything else counts as empty.
 */
export function readLocalAllowlist(file: string): LocalAllowlist {
  let text: string;
  try {
    const st = statSync(file);
    if (st.uid !== 0) return { paths: [], problem: `${file} is not owned by root` };
    if ((st.mode & 0o022) !== 0) return { paths: [], problem: `${file} is writable by group or others` };
    text = readFileSync(file, "utf8");
  } catch (err) {
    return { paths: [], problem: `${file}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}` };
  }
  const paths = text
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => l !== "" && isAbsolute(l));
  return { paths: [...new Set(paths)] };
}

/**
 * Scripts this device may run: the local allowlist (the file plus the agent's `--allow-exec`, both set
 * by whoever runs the agent), narrowed by remote config `exec.allow` when that is set. Remote config
 * can only remove entries, never add them: writing config must not mean running code as root.
 */
export function execAllowlist(ctx: Pick<HandlerContext, "state" | "options">): string[] {
  const local = [...new Set([...readLocalAllowlist(ctx.options.execAllowFile).paths, ...(ctx.options.allowExec ?? [])])];
  const effective = ctx.state.config.get("effective") as Record<string, unknown> | undefined;
  const remote = effective?.["exec.allow"];
  if (remote === undefined || remote === null) return local;
  const raw: unknown[] = Array.isArray(remote) ? remote : [remote];
  const narrowed = new Set(raw.filter((p): p is string => typeof p === "string" && isAbsolute(p)));
  return local.filter((p) => narrowed.has(p));
}
