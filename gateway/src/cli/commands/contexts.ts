import type { Command } from "commander";
import { CanopyError, ErrorCode, checkId } from "@canopy/protocol";
import { ContextStore } from "../contexts/store.js";
import { resolveTarget } from "../contexts/resolve.js";
import { printJson, table } from "../output.js";

interface AddFlags {
  creds?: string;
  ca?: string;
  description?: string;
  select?: boolean;
  json?: boolean;
}

/** `canopy context add|select|ls|rm|show`: named hubs with their credentials, like `nats context`. */
export function registerContext(program: Command): void {
  const ctx = program
    .command("context")
    .description("named hub targets (server URL, credentials, CA), selected once and used by every command")
    .addHelpText(
      "after",
      `
Precedence: --server/--creds > --context > CANOPY_SERVER/CANOPY_CREDS > CANOPY_CONTEXT > the selected context > nats://127.0.0.1:4222.
Stored in \${XDG_CONFIG_HOME:-~/.config}/canopy/contexts/<name>.json; the selected name in .../canopy/context.

Examples:
  canopy context add prod --server nats://hub.example.net:4222 --creds ~/prod-admin.creds --select
  canopy context ls
  canopy --context staging devices
  CANOPY_CONTEXT=staging canopy backlog`,
    );
  const store = (): ContextStore => new ContextStore();

  ctx
    .command("add <name>")
    .description("create or replace a context: --server URL (nats://HOST:PORT or tls://HOST:PORT) is required")
    .option("--creds <file>", "user credentials file (stored as an absolute path)")
    .option("--ca <file>", "CA certificate for TLS (stored as an absolute path)")
    .option("--description <text>", "a note shown by 'context ls'")
    .option("--select", "also make it the selected context")
    .option("--json", "print the stored context as JSON")
    .addHelpText("after", "\nExamples:\n  canopy context add lab --server nats://10.0.0.5:4222 --select")
    .action(async (name: string, o: AddFlags, cmd: Command) => {
      checkId(name, "context name");
      // --server is the program's global option (commander gives it to the program wherever it appears).
      const g = cmd.optsWithGlobals<{ server?: string; creds?: string }>();
      const server = g.server;
      const creds = o.creds ?? g.creds;
      if (!server) throw new CanopyError(ErrorCode.InvalidInput, "context add needs --server nats://HOST:PORT");
      const saved = await store().add(name, {
        server,
        ...(creds ? { creds } : {}),
        ...(o.ca ? { ca: o.ca } : {}),
        ...(o.description ? { description: o.description } : {}),
      });
      if (o.select) await store().select(name);
      if (o.json) printJson({ name, selected: o.select === true, ...saved });
      else process.stdout.write(`context ${name}: ${saved.server}${o.select ? " (selected)" : ""}\n`);
    });

  ctx
    .command("select <name>")
    .description("use this context when no --server/--context/env says otherwise")
    .option("--json", "print the selected context as JSON")
    .addHelpText("after", "\nExamples:\n  canopy context select prod")
    .action(async (name: string, o: { json?: boolean }) => {
      await store().select(checkId(name, "context name"));
      const c = await store().get(name);
      if (o.json) printJson({ name, selected: true, ...c });
      else process.stdout.write(`selected context ${name}: ${c.server}\n`);
    });

  ctx
    .command("ls")
    .alias("list")
    .description("every stored context; * marks the selected one")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy context ls --json")
    .action(async (o: { json?: boolean }) => {
      const s = store();
      const [all, selected] = [await s.list(), await s.selected()];
      if (o.json) {
        return printJson(all.map((c) => ({ name: c.name, selected: c.name === selected, ...(c.context ?? {}), ...(c.error ? { error: c.error } : {}) })));
      }
      const rows = all.map((c) => [
        `${c.name === selected ? "*" : " "} ${c.name}`,
        c.context?.server ?? `(unreadable: ${c.error ?? "?"})`,
        c.context?.creds ?? "-",
        c.context?.description ?? "",
      ]);
      process.stdout.write(rows.length ? table(["  NAME", "SERVER", "CREDS", "DESCRIPTION"], rows) : "no contexts; add one with 'canopy context add NAME --server URL'\n");
    });

  ctx
    .command("rm <name>")
    .alias("remove")
    .description("delete a context (and unselect it)")
    .option("--json", "print the removed context as JSON")
    .addHelpText("after", "\nExamples:\n  canopy context rm old-lab")
    .action(async (name: string, o: { json?: boolean }) => {
      const s = store();
      const before = await s.get(checkId(name, "context name"));
      await s.remove(name);
      if (o.json) printJson({ name, removed: true, ...before });
      else process.stdout.write(`removed context ${name}\n`);
    });

  ctx
    .command("show")
    .description("the hub this shell's commands would use, and why")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy context show\n  canopy --context prod context show --json")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ server?: string; context?: string; creds?: string }>();
      const t = await resolveTarget({ ...(g.server ? { server: g.server } : {}), ...(g.context ? { context: g.context } : {}), ...(g.creds ? { creds: g.creds } : {}) });
      if (o.json) return printJson(t);
      process.stdout.write(`server: ${t.server} (from ${t.from}${t.context ? ` '${t.context}'` : ""})\ncreds: ${t.creds ?? "-"}\nca: ${t.ca ?? "-"}\n`);
    });
}
