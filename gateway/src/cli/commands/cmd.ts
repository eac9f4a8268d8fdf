import type { Command } from "commander";
import {
  CanopyError,
  CommandName,
  CommandState,
  DEFAULT_COMMAND_TTL_MS,
  ErrorCode,
  MAX_COMMAND_TTL_MS,
  check,
  checkId,
  isTerminal,
  parseDuration,
  type CommandRecord,
} from "@canopy/protocol";
import { CommandSender, CommandStore, LIVE_MAX, RECORDED_WAIT_MS, ResultFeed, checkSelector, resolveTargets, untilRecorded, waitForCommands } from "../../commands/index.js";
import { mapLimit } from "../../kv/read.js";
import { collect, shutdownSignal, withHub } from "../context.js";
import { age, formatMs, printJson, readable, table } from "../output.js";
import { watchOption, watched, type WatchFlags } from "../watch.js";

interface SendOpts {
  device?: string;
  group?: string;
  where?: string;
  arg: string[];
  args?: string;
  ttl: string;
  wait?: boolean;
  timeout: string;
  json?: boolean;
}

/** Sends in flight at once in a fan-out. */
const FAN_OUT_IN_FLIGHT = 256;

export function registerCmd(program: Command): void {
  const cmd = program
    .command("cmd")
    .description("remote commands: queued for offline devices, run once, with TTL, cancel and results")
    .addHelpText(
      "after",
      `
States: queued → delivered → running → succeeded | failed | rejected | expired | cancelled | interrupted
A command starts at most once: one the agent was running when it died ends 'interrupted' (not run
again) unless it is idempotent (ping, sysinfo, logs.tail, config.reload run again). TTLs are judged
on the hub's clock, so a device with a wrong clock neither runs stale commands nor drops fresh ones.

Examples:
  canopy cmd send --device pi-01 ping --wait
  canopy cmd send --group lab sysinfo --ttl 1h
  canopy cmd list --device pi-01
  canopy cmd status <id> --json
  canopy cmd cancel <id>`,
    );
  cmd
    .command("send <name>")
    .description("send a command to a device, a group, or devices matching a query; prints the command id(s)")
    .option("-d, --device <id>", "one device")
    .option("-g, --group <group>", "every device in the group")
    .option("-w, --where <cel>", "every device whose live facts match a CEL expression")
    .option("-a, --arg <key=value>", "a string argument (repeatable)", collect, [])
    .option("--args <json>", "arguments as a JSON object (--arg values override its keys)")
    .option("--ttl <duration>", "not run if it reaches the device later than this (max 30d)", "24h")
    .option("--wait", "wait for the results and print them")
    .option("--timeout <duration>", "with --wait: how long to wait", "30s")
    .option("--json", "print the command records as JSON")
    .addHelpText(
      "after",
      `
Built-in commands: ping, sysinfo, config.reload, agent.restart, logs.tail (--arg lines=N),
wifi.scan, wifi.connect (--arg ssid=.. --arg password=..), mcu.<name> (--arg mcu=<id>),
exec (--arg path=/abs/script, only scripts in the device's exec.allow list).

Exit codes: 0 sent (with --wait: every command succeeded), 1 a command failed, was rejected,
expired, was cancelled or interrupted, or did not finish in time, 2 bad usage.

Examples:
  canopy cmd send --device pi-01 ping
  canopy cmd send --group lab sysinfo --wait --timeout 1m --json
  canopy cmd send --device pi-01 logs.tail --arg lines=50 --wait
  canopy cmd send --device pi-01 mcu.blink --arg mcu=m1 --args '{"times": 3}' --ttl 10m
  canopy cmd send --device pi-01 exec --args '{"path": "/opt/canopy/bin/rotate-logs.sh"}'`,
    )
    .action(async (name: string, o: SendOpts, command: Command) => {
      // Everything is validated before the hub is contacted.
      check(CommandName, name);
      checkSelector({ device: o.device, group: o.group, where: o.where });
      const args = parseArgs(o.args, o.arg);
      const ttlMs = parseDuration(o.ttl, "--ttl");
      if (ttlMs <= 0 || ttlMs > MAX_COMMAND_TTL_MS) throw new CanopyError(ErrorCode.InvalidInput, "--ttl must be more than 0 and at most 30d");
      const timeoutMs = parseDuration(o.timeout, "--timeout");
      await withHub(command, async (nc) => {
        const targets = await resolveTargets(nc, { device: o.device, group: o.group, where: o.where });
        const sender = await CommandSender.open(nc);
        // Pipelined (a KV create and a CMD publish each): one at a time, 1,000 devices took seconds to send.
        const by = `cli:${process.env.USER ?? "unknown"}`;
        // --wait: follow the results from before the send (see ResultFeed); a few targets also live.
        const feed = o.wait ? await ResultFeed.open(sender.store, targets, { live: targets.length <= LIVE_MAX }) : undefined;
        const sent: CommandRecord[] = await mapLimit(targets, FAN_OUT_IN_FLIGHT, (device) => sender.send({ device, name, args, ttlMs, by }));
        if (!o.wait) {
          if (o.json) printJson(sent);
          else process.stdout.write(sent.map((r) => (targets.length > 1 ? `${r.id}  ${r.device}` : r.id)).join("\n") + "\n");
          return;
        }
        const { signal } = shutdownSignal();
        // Fan-out progress on stderr (stdout stays the results): "n/m done" as commands finish.
        const progress = sent.length > 1 && !o.json ? (done: number, total: number) => process.stderr.write(`${done}/${total} done\n`) : undefined;
        const { records, complete } = await waitForCommands(sender.store, sent, timeoutMs, signal, progress, feed);
        if (o.json) printJson(records);
        else printResults(records);
        // Printed as soon as the results crossed the hub; exit once KV commands has them too.
        await untilRecorded(sender.store, records.filter((r) => isTerminal(r.state)), RECORDED_WAIT_MS, signal, feed);
        feed?.close();
        if (!complete) process.stderr.write(`not finished after ${o.timeout}: ${records.filter((r) => !isTerminal(r.state)).length} command(s) still pending\n`);
        if (!complete || records.some((r) => r.state !== "succeeded")) process.exitCode = 1;
      });
    });

  watchOption(cmd.command("status <id>"))
    .description("a command's state, the time of each state, and its result")
    .option("--json", "print the record as JSON")
    .addHelpText("after", "\nExamples:\n  canopy cmd status 0lx3k9z1a9f3c2e4b1d\n  canopy cmd status 0lx3k9z1a9f3c2e4b1d --watch 1s\n  canopy cmd status 0lx3k9z1a9f3c2e4b1d --json")
    .action(async (id: string, o: WatchFlags, command: Command) => {
      checkId(id, "command id");
      await watched(command, o, async (nc, json) => {
        const { record } = await (await CommandStore.open(nc)).require(id);
        if (o.json) json(record);
        else printRecord(record);
      });
    });

  cmd
    .command("list")
    .description("recent commands, newest first")
    .option("-d, --device <id>", "only this device's commands")
    .option("--state <state>", `only commands in this state (${CommandState.options.join("|")})`)
    .option("--limit <n>", "at most this many", "50")
    .option("--json", "print the records as JSON")
    .addHelpText("after", "\nExamples:\n  canopy cmd list\n  canopy cmd list --device pi-01 --state failed --json")
    .action(async (o: { device?: string; state?: string; limit: string; json?: boolean }, command: Command) => {
      if (o.device !== undefined) checkId(o.device, "device id");
      const state = o.state === undefined ? undefined : check(CommandState, o.state);
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CanopyError(ErrorCode.InvalidInput, "--limit must be a positive integer");
      await withHub(command, async (nc) => {
        const all = await (await CommandStore.open(nc)).list({ device: o.device });
        const records = all.filter((r) => state === undefined || r.state === state).slice(0, limit);
        if (o.json) {
          printJson(records);
          return;
        }
        const now = Date.now();
        process.stdout.write(
          table(
            ["ID", "DEVICE", "NAME", "STATE", "AGE", "DETAIL"],
            records.map((r) => [r.id, r.device, r.name, stateText(r), age(now - r.createdAt), r.error ? r.error.message.slice(0, 60) : ""]),
          ),
        );
      });
    });

  cmd
    .command("cancel <id>")
    .description("cancel a command: not run if it has not started; a running handler is told to stop")
    .option("--json", "print the command record as JSON")
    .addHelpText("after", "\nExamples:\n  canopy cmd cancel 0lx3k9z1a9f3c2e4b1d")
    .action(async (id: string, o: { json?: boolean }, command: Command) => {
      checkId(id, "command id");
      await withHub(command, async (nc) => {
        const rec = await (await CommandSender.open(nc)).cancel(id);
        if (o.json) return printJson(rec);
        const what = rec.state === "queued" ? "it will not run; the device confirms when it gets it" : "its handler is told to stop";
        process.stdout.write(`cancel requested for ${id} on ${rec.device} (was ${rec.state}): ${what}; see 'canopy cmd status ${id}'\n`);
      });
    });
}

/** `--args` JSON object, then `--arg k=v` strings on top. */
function parseArgs(json: string | undefined, pairs: string[]): Record<string, unknown> {
  let args: Record<string, unknown> = {};
  if (json !== undefined) {
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      throw new CanopyError(ErrorCode.InvalidInput, "--args must be a JSON object, e.g. '{\"lines\": 50}'");
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new CanopyError(ErrorCode.InvalidInput, "--args must be a JSON object");
    args = v as Record<string, unknown>;
  }
  for (const p of pairs) {
    const eq = p.indexOf("=");
    const key = eq > 0 ? p.slice(0, eq) : "";
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(key)) throw new CanopyError(ErrorCode.InvalidInput, `--arg ${JSON.stringify(p)}: use key=value with a key of [A-Za-z0-9_-]`);
    args[key] = p.slice(eq + 1);
  }
  return args;
}

/**
 * A cancel is decided on the device (only it knows whether the command started), so until it answers
 * the record says what will happen rather than "queued".
 */
function stateText(r: CommandRecord): string {
  if (r.cancelRequestedAt === undefined || isTerminal(r.state)) return r.state;
  return r.state === "queued" ? "cancelling (the device drops it when it gets it; it will not run)" : `${r.state}, cancelling (the handler was told to stop)`;
}

/** One row per command; a structured result (sysinfo) follows its row as indented `key: value` lines. */
function printResults(records: CommandRecord[]): void {
  const simple = (v: unknown): boolean => v === null || v === undefined || typeof v !== "object";
  process.stdout.write(
    table(
      ["ID", "DEVICE", "STATE", "RESULT"],
      records.map((r) => [r.id, r.device, stateText(r), r.error ? `${r.error.code}: ${r.error.message}` : simple(r.result) ? JSON.stringify(r.result ?? null) : "(below)"]),
    ),
  );
  for (const r of records) {
    if (r.error || simple(r.result)) continue;
    process.stdout.write(`\n${r.device} ${r.name}:\n${readable(r.result, "  ").join("\n")}\n`);
  }
}

function printRecord(r: CommandRecord): void {
  const order = ["queued", "delivered", "running", "succeeded", "failed", "rejected", "expired", "cancelled", "interrupted"];
  const lines = [
    `id:       ${r.id}`,
    `device:   ${r.device}`,
    `command:  ${r.name} ${JSON.stringify(r.args)}`,
    `state:    ${stateText(r)}`,
    `ttl:      ${formatMs(r.ttlMs)}${r.ttlMs === DEFAULT_COMMAND_TTL_MS ? " (default)" : ""}`,
    ...order.filter((s) => r.times[s] !== undefined).map((s) => `  ${s.padEnd(10)} ${new Date(r.times[s] ?? 0).toISOString()}`),
    ...(r.cancelRequestedAt !== undefined ? [`  cancel requested ${new Date(r.cancelRequestedAt).toISOString()}`] : []),
    ...(r.error ? [`error:    ${r.error.code}: ${r.error.message}`] : []),
    ...(r.result !== undefined ? ["result:", ...readable(r.result, "  ")] : []),
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
