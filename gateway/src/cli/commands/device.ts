import type { Command } from "commander";
import { checkId } from "@canopy/protocol";
import { Registry } from "../../registry/devices.js";
import { collect, withHub } from "../context.js";
import { age, printJson, table } from "../output.js";
import { watchOption, watched, type WatchFlags } from "../watch.js";

export function registerDevice(program: Command): void {
  const device = program.command("device").description("enroll and remove devices");
  device
    .command("add <id>")
    .description("enroll a device: registry entry + a hub shard sourcing its UP stream")
    .option("-g, --group <group>", "group membership (repeatable)", collect, [])
    .option("--shard-size <n>", "devices per hub shard when a new shard is needed", "2000")
    .option("--json", "print the device record as JSON")
    .addHelpText("after", "\nExamples:\n  canopy device add pi-01 --group lab --group floor2")
    .action(async (id: string, opts: { group: string[]; shardSize: string; json?: boolean }, cmd: Command) => {
      // Validate before connecting: a bad id must not touch KV or a subject.
      checkId(id, "device id");
      for (const g of opts.group) checkId(g, "group id");
      const shardSize = Number(opts.shardSize);
      await withHub(cmd, async (nc) => {
        const reg = await Registry.open(nc, { shardSize });
        const { record, created } = await reg.enroll(id, opts.group);
        if (opts.json) printJson({ ...record, newlyEnrolled: created });
        else process.stdout.write(`${created ? "enrolled" : "updated"} ${id} (groups: ${record.groups.join(",") || "-"}, shard: ${record.shard})\n`);
      });
    });
  device
    .command("rm <id>")
    .description("remove a device from the registry and stop sourcing its data (stored data stays)")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      checkId(id, "device id");
      await withHub(cmd, async (nc) => {
        await (await Registry.open(nc)).remove(id);
        process.stdout.write(`removed ${id}\n`);
      });
    });

  watchOption(program.command("devices"))
    .description("list enrolled devices with presence, last seen, os and agent version")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy devices\n  canopy devices --watch 5s\n  canopy devices --json | jq '.[] | select(.online | not) | .device'")
    .action(async (opts: WatchFlags, cmd: Command) => {
      await watched(cmd, opts, async (nc, json) => {
        const views = await (await Registry.open(nc)).view();
        if (opts.json) {
          json(
            views.map((v) => ({
              device: v.record.id,
              id: v.record.id,
              groups: v.record.groups,
              shard: v.record.shard,
              online: v.online,
              lastSeenMs: v.lastSeenMs ?? null,
              status: v.status ?? null,
            })),
          );
          return;
        }
        const rows = views.map((v) => [
          v.record.id,
          v.record.groups.join(",") || "-",
          v.online ? "online" : "offline",
          age(v.lastSeenMs),
          [v.status?.facts?.os?.distro, v.status?.facts?.os?.release].filter(Boolean).join(" ") || "-",
          v.status?.agent.version ?? "-",
        ]);
        process.stdout.write(table(["DEVICE", "GROUPS", "STATE", "LAST SEEN", "OS", "AGENT"], rows));
        process.stdout.write(`${views.filter((v) => v.online).length}/${views.length} online\n`);
      });
    });
}

