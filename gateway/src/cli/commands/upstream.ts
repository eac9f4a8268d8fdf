import type { Command } from "commander";
import { checkId, parseDuration } from "@canopy/protocol";
import { withHub, shutdownSignal } from "../context.js";
import { age, bytes, printJson, table } from "../output.js";
import { tail } from "../../upstream/tail.js";
import { backlog } from "../../upstream/backlog.js";

export function registerUpstream(program: Command): void {
  program
    .command("tail")
    .description("read device data that reached the hub (all shards, in order per device)")
    .option("-d, --device <id>", "only this device")
    .option("--subject <filter>", "subject filter within up.> (wildcards allowed), e.g. 'up.*.tlm.temp'")
    .option("--since <duration>", "only messages newer than this, e.g. 10m, 2h")
    .option("-f, --follow", "keep printing new messages until Ctrl-C")
    .option("--json", "one JSON object per line: device, subject, seq, time, headers, payload")
    .addHelpText(
      "after",
      "\nExamples:\n  canopy tail --device pi-01 --since 10m\n  canopy tail --subject 'up.*.tlm.mcu.>' --follow --json",
    )
    .action(async (o: { device?: string; subject?: string; since?: string; follow?: boolean; json?: boolean }, cmd: Command) => {
      if (o.device) checkId(o.device, "device id");
      const sinceMs = o.since === undefined ? undefined : parseDuration(o.since, "--since");
      const { signal } = o.follow ? shutdownSignal() : { signal: undefined };
      await withHub(cmd, async (nc) => {
        for await (const r of tail(nc, {
          ...(o.device ? { device: o.device } : {}),
          ...(o.subject ? { subject: o.subject } : {}),
          ...(sinceMs === undefined ? {} : { sinceMs }),
          follow: o.follow === true,
          ...(signal ? { signal } : {}),
        })) {
          const line = o.json
            ? JSON.stringify(r)
            : `${r.time} ${r.subject} #${r.seq ?? "?"} ${r.encoding === "utf8" ? r.payload : `<${r.payload.length} b64 chars>`}`;
          if (!process.stdout.write(line + "\n")) await new Promise((res) => process.stdout.once("drain", res));
        }
      });
    });

  program
    .command("backlog")
    .description("per device: messages and bytes not yet in the hub, and when the hub last heard from it")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy backlog\n  canopy backlog --json | jq '.[] | select(.pending > 0)'")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withHub(cmd, async (nc) => {
        const rows = await backlog(nc);
        if (o.json) {
          printJson(rows);
          return;
        }
        process.stdout.write(
          table(
            ["DEVICE", "STATE", "PENDING", "BYTES", "AS OF", "LAST RECEIVED", "DISCARDED", "SHARD"],
            rows.map((r) => [
              r.device,
              r.online ? "online" : "offline",
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
