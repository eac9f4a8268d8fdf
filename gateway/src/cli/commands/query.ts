import type { Command } from "commander";
import { parseDuration } from "@canopy/protocol";
import { prepareQuery, runQuery } from "../../query/index.js";
import { DEFAULT_FIELDS, cell, rows, type DeviceRow } from "../../query/render.js";
import type { QueryResult } from "../../query/run.js";
import { shutdownSignal, withHub } from "../context.js";
import { age, printJson, table } from "../output.js";

interface QueryFlags {
  group?: string;
  device?: string;
  fields?: string;
  timeout: string;
  includeOffline?: boolean;
  explain?: boolean;
  json?: boolean;
}

export function registerQuery(program: Command): void {
  program
    .command("query [expr]")
    .description("ask devices now: a CEL filter evaluated on every addressed device, answers gathered live")
    .option("-g, --group <group>", "only devices of this group (q.group.<g>)")
    .option("-d, --device <id>", "only this device (q.dev.<id>)")
    .option("-f, --fields <list>", `comma-separated fact paths to show (default ${DEFAULT_FIELDS.join(",")})`)
    .option("-t, --timeout <duration>", "stop waiting for silent devices after this long", "2s")
    .option("--include-offline", "also list addressed devices that did not answer, from their last status, with its age")
    .option("--explain", "every device answers: matched, not matched, or the evaluation error")
    .option("--json", "machine-readable output: {devices: [...], summary: {...}}")
    .addHelpText(
      "after",
      `
Facts: device, os.{platform,distro,release,arch,kernel,hostname,uptime}, cpu.{model,cores,load (% busy, 0-100),temperature (°C)},
  mem.{total,available,used}, disk.{total,available,used}, net.interfaces, agent.{version,uptime},
  labels (groups), config (effective config: config.log.level or config["log.level"]),
  mcus (list of {id, board, firmware, online}), up.{messages,bytes,full} (what the hub has not received
  yet: 'canopy backlog').
  Integers are CEL ints: write mem.available < 200000000 or 200e6; guard optional facts with has().

Examples:
  canopy query 'os.platform == "linux" && mem.available < 200e6'
  canopy query 'mcus.exists(m, m.board == "rp2040")' --fields mcus,agent.version
  canopy query --group lab --include-offline
  canopy query 'cpu.load > 80.0' --explain --json`,
    )
    .action(async (expr: string | undefined, f: QueryFlags, cmd: Command) => {
      const fields = f.fields === undefined ? undefined : f.fields.split(",").map((s) => s.trim()).filter(Boolean);
      const shown = fields ?? DEFAULT_FIELDS;
      const opts = {
        expr,
        group: f.group,
        device: f.device,
        timeoutMs: parseDuration(f.timeout, "--timeout"),
        fields: f.json && fields === undefined ? [] : shown,
        facts: Boolean(f.json && fields === undefined),
        explain: Boolean(f.explain),
      };
      // Compile and validate before connecting: a bad expression or id publishes nothing.
      prepareQuery(opts);
      const { signal } = shutdownSignal();
      await withHub(cmd, async (nc) => {
        const result = await runQuery(nc, { ...opts, signal });
        const view = rows(result, { explain: opts.explain, includeOffline: Boolean(f.includeOffline), fields: opts.fields, facts: opts.facts });
        if (f.json) printJson({ devices: view, summary: { ...result.summary, id: result.id, expr: result.expr } });
        else process.stdout.write(render(view, result, shown, opts.explain, Boolean(f.includeOffline)));
      });
    });
}

function render(view: DeviceRow[], r: QueryResult, fields: string[], explain: boolean, includeOffline: boolean): string {
  const headers = ["DEVICE", ...(explain ? ["RESULT"] : []), ...fields.map((x) => x.toUpperCase()), ...(includeOffline ? ["FACTS"] : [])];
  const body = view.map((d) => [
    d.id,
    ...(explain ? [result(d)] : []),
    ...fields.map((x) => cell(x, d.values?.[x])),
    ...(includeOffline ? [d.source === "live" ? "live" : `${d.source}, ${d.factsAgeMs == null ? "never reported" : `${age(d.factsAgeMs)} old`}`] : []),
  ]);
  return (body.length ? table(headers, body) : "no matching devices\n") + footer(r) + "\n";
}

function result(d: DeviceRow): string {
  if (d.source !== "live") return "?";
  if (d.error) return `error: ${d.error.message}`;
  return d.matched ? "match" : "no match";
}

function footer(r: QueryResult): string {
  const s = r.summary;
  const parts = [
    `${s.answered} answered (${s.expected} of ${s.targeted} addressed devices online)`,
    `${s.matched} matched`,
    ...(s.errors ? [`${s.errors} could not evaluate`] : []),
    `${s.silent} known but silent`,
    `${s.elapsedMs} ms${s.timedOut ? " (timed out waiting for online devices)" : ""}`,
  ];
  return parts.join(" · ");
}
