import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

/**
 * Contexts: named ways to reach a hub, so `canopy devices` works without flags on a machine that ran
 * `hub start` or `dev up`. `${XDG_CONFIG_HOME:-~/.config}/canopy/contexts/<name>.json` holds
 * `{server, creds, ca?}`; `${XDG_CONFIG_HOME:-~/.config}/canopy/context` names the selected one.
 */
export const HubContext = z.object({ server: z.string().min(1), creds: z.string().optional(), ca: z.string().optional() });
export type HubContext = z.infer<typeof HubContext>;

export function canopyConfigDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "canopy");
}

export function selectedContextName(): string | undefined {
  try {
    const name = readFileSync(join(canopyConfigDir(), "context"), "utf8").trim();
    return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

export function readContext(name: string): HubContext | undefined {
  try {
    const r = HubContext.safeParse(JSON.parse(readFileSync(join(canopyConfigDir(), "contexts", `${name}.json`), "utf8")));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export function selectedContext(): HubContext | undefined {
  const name = selectedContextName();
  return name ? readContext(name) : undefined;
}

/** Writes context `name`; selects it when `select` is "always", or "if-none" and nothing valid is selected. */
export async function writeContext(name: string, ctx: HubContext, select: "always" | "if-none" = "if-none"): Promise<string> {
  const dir = canopyConfigDir();
  await mkdir(join(dir, "contexts"), { recursive: true, mode: 0o700 });
  const file = join(dir, "contexts", `${name}.json`);
  await writeFile(file, JSON.stringify(ctx, null, 2) + "\n", { mode: 0o600 });
  const current = selectedContextName();
  if (select === "always" || !current || !existsSync(join(dir, "contexts", `${current}.json`))) {
    await writeFile(join(dir, "context"), name + "\n", { mode: 0o600 });
  }
  return file;
}
