import { mkdir, readFile, readdir, rm, writeFile, rename } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { CanopyError, ErrorCode, checkId, describeIssues } from "@canopy/protocol";

/** `${XDG_CONFIG_HOME:-~/.config}/canopy` */
export function canopyConfigDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "canopy");
}

/**
 * Named hub targets in the style of `nats context`, shared with `hub start`/`dev up` (which write one):
 * `${XDG_CONFIG_HOME:-~/.config}/canopy/contexts/<name>.json` = `{server, creds?, ca?}`, and the
 * selected name in `${XDG_CONFIG_HOME:-~/.config}/canopy/context`.
 */
export const HubContext = z.object({
  server: z.string().regex(/^(nats|tls):\/\/[^\s]+$/, "must be a nats:// or tls:// URL"),
  creds: z.string().min(1).optional(),
  ca: z.string().min(1).optional(),
  description: z.string().max(200).optional(),
});
export type HubContext = z.infer<typeof HubContext>;

export class ContextStore {
  constructor(readonly dir: string = canopyConfigDir()) {}

  private file(name: string): string {
    return join(this.dir, "contexts", `${checkId(name, "context name")}.json`);
  }

  async list(): Promise<Array<{ name: string; context: HubContext | undefined; error?: string }>> {
    const names = (await readdir(join(this.dir, "contexts")).catch(() => [] as string[]))
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.slice(0, -5))
      .sort();
    return Promise.all(
      names.map(async (name) => {
        try {
          return { name, context: await this.get(name) };
        } catch (err) {
          return { name, context: undefined, error: (err as Error).message };
        }
      }),
    );
  }

  async get(name: string): Promise<HubContext> {
    const path = this.file(name);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch {
      throw new CanopyError(ErrorCode.NotFound, `no context ${JSON.stringify(name)} (${path}); see 'canopy context ls'`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new CanopyError(ErrorCode.InvalidInput, `context ${name} (${path}) is not valid JSON`);
    }
    const r = HubContext.safeParse(raw);
    if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, `context ${name} (${path}): ${describeIssues(r.error)}`);
    return r.data;
  }

  /** Writes atomically (temp file + rename); relative creds/ca paths are made absolute. */
  async add(name: string, ctx: HubContext): Promise<HubContext> {
    const r = HubContext.safeParse({
      ...ctx,
      ...(ctx.creds ? { creds: resolve(ctx.creds) } : {}),
      ...(ctx.ca ? { ca: resolve(ctx.ca) } : {}),
    });
    if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, `context ${name}: ${describeIssues(r.error)}`);
    const clean = r.data;
    const path = this.file(name);
    await mkdir(join(this.dir, "contexts"), { recursive: true, mode: 0o700 });
    // A temporary name of its own: hub nodes started together write the same context at once, and a
    // shared "<name>.json.tmp" was renamed away under one of them (ENOENT: its hub never got ready).
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(tmp, JSON.stringify(clean, null, 2) + "\n", { mode: 0o600 });
    await rename(tmp, path).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      throw err;
    });
    return clean;
  }

  async remove(name: string): Promise<boolean> {
    const path = this.file(name);
    const existed = await readFile(path).then(() => true, () => false);
    await rm(path, { force: true });
    if (existed && (await this.selected()) === name) await rm(join(this.dir, "context"), { force: true });
    return existed;
  }

  async select(name: string): Promise<void> {
    await this.get(name);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(join(this.dir, "context"), `${name}\n`, { mode: 0o600 });
  }

  async selected(): Promise<string | undefined> {
    const text = await readFile(join(this.dir, "context"), "utf8").catch(() => "");
    const name = text.trim();
    return name === "" ? undefined : name;
  }
}

/**
 * What `hub start` and `dev up` do so `canopy devices` just works on that machine: write context
 * `name` and select it when `select` is "always", or "if-none" and no existing context is selected.
 * Returns the file written.
 */
export async function writeContext(name: string, ctx: HubContext, select: "always" | "if-none" = "if-none", store = new ContextStore()): Promise<string> {
  await store.add(name, ctx);
  const current = await store.selected();
  const currentOk = current !== undefined && (await store.get(current).then(() => true, () => false));
  if (select === "always" || !currentOk) await store.select(name);
  return join(store.dir, "contexts", `${name}.json`);
}
