import type { Command } from "commander";
import { CanopyError, ErrorCode, checkId, parseDuration } from "@canopy/protocol";
import { withHub, shutdownSignal } from "../context.js";
import { age, bytes, printJson, table } from "../output.js";
import { tail, tailFilter } from "../../upstream/tail.js";
import { backlog } from "../../upstream/backlog.js";
import { watchHub } from "../watchdog.js";
import { watchOption, watched, type WatchFlags } from "../watch.js";

const DEFAULT_LAST = 100;

interface TailFlags {
  device?: string;
  subject?: string;
  last?: string;
  since?: string;
  follow?: boolean;
  giveUp: string;
  json?: boolean;
}

function count(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new CanopyError(ErrorCode.InvalidInput, `${what} must be a whole number ≥ 0, got ${JSON.stringify(text)}`);
  return n;
}

export function registerUpstream(program: Command): void {
  program
    .command("tail")
    .description("read device data that reached the hub (all shards, in order per device)")
    .option("-d, --device <id>", "only this device")
    .option("--subject <filter>", "subject filter within up.> (wildcards allowed), e.g. 'up.*.tlm.temp'; with --device also 'tlm.>'")
    .option("-n, --last <n>", "only the last N matching messages (default 100 unless --since is given; 0 with --follow: only new ones)")
    .option("--since <duration>", "only messages newer than this, e.g. 10m, 2h")
    .option("-f, --follow", "keep printing new messages until Ctrl-C; survives hub restarts without gaps or repeats")
    .option("--give-up <duration>", "with --follow: exit 1 when the hub stays unreachable this long", "2m")
    .option("--json", "one JSON object per line: device, subject, seq, shardSeq, time, ageMs, headers, payload")
    .addHelpText(
      "after",
      "\nExamples:\n  canopy tail --device pi-01 --since 10m\n  canopy tail -n 20 --device pi-01 --subject 'up.*.tlm.temp'\n  canopy tail --subject 'up.*.tlm.mcu.>' --follow --json",
    )
    .action(async (o: TailFlags, cmd: Command) => {
      if (o.device) checkId(o.device, "device id");
      const sinceMs = o.since === undefined ? undefined : parseDuration(o.since, "--since");
      const last = sinceMs !== undefined ? undefined : count(o.last ?? String(DEFAULT_LAST), "--last");
      const giveUpMs = parseDuration(o.giveUp, "--give-up");
      const ac = new AbortController();
      if (o.follow) void shutdownSignal().done.then(() => ac.abort());
      await withHub(
        cmd,
        async (nc) => {
          const dog = o.follow ? watchHub(nc, giveUpMs, ac) : undefined;
          for await (const r of tail(nc, {
            ...(o.device ? { device: o.device } : {}),
            ...(o.subject ? { subject: o.subject } : {}),
            ...(sinceMs === undefined ? {} : { sinceMs }),
            ...(last === undefined ? {} : { last }),
            follow: o.follow === true,
            signal: ac.signal,
            onFollow: () => process.stderr.write(`following ${tailFilter(o)} (Ctrl-C to stop)\n`),
          })) {
            const line = o.json
              ? JSON.stringify({ ...r, ageMs: Date.now() - Date.parse(r.time) })
              : `${r.time} ${r.subject} #${r.seq ?? "?"} ${r.encoding === "utf8" ? r.payload : `<${r.payload.length} b64 chars>`}`;
            if (!process.stdout.write(line + "\n")) await new Promise((res) => process.stdout.once("drain", res));
          }
          const lost = dog?.gaveUp();
          if (lost) throw new CanopyError(ErrorCode.Unavailable, `stopped following: ${lost}; run again with --since to pick up what arrived meanwhile`);
        },
        { reconnect: o.follow === true },
      );
    });

  watchOption(program.command("backlog"))
    .description("per device: messages and bytes not yet in the hub, and when the hub last heard from it")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy backlog\n  canopy backlog --watch\n  canopy backlog --json | jq '.[] | select(.pending > 0)'")
    .action(async (o: WatchFlags, cmd: Command) => {
      await watched(cmd, o, async (nc, json) => {
        const rows = await backlog(nc);
        if (o.json) {
          json(rows);
          return;
        }
        process.stdout.write(
          table(
            ["DEVICE", "STATE", "PENDING", "BYTES", "AS OF", "LAST RECEIVED", "DISCARDED", "SHARD"],
            rows.map((r) => [
              r.device,
              (r.online ? "online" : "offline") + (r.diskFull ? ",disk_full" : ""),
              r.pending === null ? "?" : String(r.pending),
              r.pendingBytes === null ? "?" : bytes(r.pendingBytes),
              r.asOfMs === null ? "never" : `${age(r.asOfMs)} ago`,
              r.lastReceivedAgeMs === null ? "never" : `${age(r.lastReceivedAgeMs)} ago`,
              String(r.discarded),
              r.shard ?? "-",
            ]),
          ),
        );
      });
    });
}
