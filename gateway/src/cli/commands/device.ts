import type { Command } from "commander";
import { CanopyError, ErrorCode, checkId, encodeJoinToken, type EnrollBundle } from "@canopy/protocol";
import { Registry } from "../../registry/devices.js";
import { requestMint, requestRevoke } from "../../identity/client.js";
import { writeSecret } from "../../identity/init.js";
import { collect, withHub } from "../context.js";
import { age, printJson, table } from "../output.js";
import { watchOption, watched, type WatchFlags } from "../watch.js";

/** Writes the bundle (0600) or returns the one-line join token: what the device needs to join. */
async function deliver(bundle: EnrollBundle, file: string | undefined): Promise<{ bundle?: string; join?: string }> {
  if (file) {
    await writeSecret(file, JSON.stringify(bundle, null, 2) + "\n");
    return { bundle: file };
  }
  return { join: encodeJoinToken(bundle) };
}

function printEnrollment(out: { bundle?: string; join?: string }, device: string): void {
  if (out.bundle) process.stdout.write(`bundle for ${device} written to ${out.bundle} (secret: copy it to the device, then delete it)\n  on the device: canopy agent --bundle ${out.bundle} --data /var/lib/canopy\n`);
  else process.stdout.write(`join token for ${device} (secret), on the device run:\n  canopy agent --data /var/lib/canopy --join ${out.join ?? ""}\n`);
}

async function mustBeEnrolled(reg: Registry, id: string): Promise<void> {
  if (!(await reg.get(id))) throw new CanopyError(ErrorCode.NotFound, `device ${id} is not enrolled`);
}

export function registerDevice(program: Command): void {
  const device = program.command("device").description("enroll, remove, revoke and rotate devices");
  device
    .command("add <id>")
    .description("enroll a device: registry entry, a hub shard sourcing its UP stream, and new credentials (a new key every time)")
    .option("-g, --group <group>", "group membership (repeatable)", collect, [])
    .option("--bundle <file>", "write the enrollment bundle (JSON, 0600) here instead of printing a join token")
    .option("--shard-size <n>", "devices per hub shard when a new shard is needed", "2000")
    .option("--json", "print the device record (and bundle path or join token) as JSON")
    .addHelpText("after", "\nExamples:\n  canopy device add pi-01 --group lab --group floor2 --bundle pi-01.json\n  canopy device add pi-02            # prints a one-line join token")
    .action(async (id: string, opts: { group: string[]; bundle?: string; shardSize: string; json?: boolean }, cmd: Command) => {
      // Validate before connecting: a bad id must not touch KV or a subject.
      checkId(id, "device id");
      for (const g of opts.group) checkId(g, "group id");
      const shardSize = Number(opts.shardSize);
      await withHub(cmd, async (nc) => {
        const reg = await Registry.open(nc, { shardSize });
        const { record, created } = await reg.enroll(id, opts.group);
        const minted = await requestMint(nc, id);
        const out = await deliver(minted.bundle, opts.bundle);
        if (opts.json) {
          printJson({ ...record, newlyEnrolled: created, userKey: minted.userKey, ...out });
          return;
        }
        process.stdout.write(`${created ? "enrolled" : "updated"} ${id} (groups: ${record.groups.join(",") || "-"}, shard: ${record.shard})\n`);
        printEnrollment(out, id);
      });
    });
  device
    .command("rm <id>")
    .description("remove a device: revoke its credentials (its link drops), leave the registry, stop sourcing its data (stored data stays)")
    .option("--json", "print what was done as JSON")
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      checkId(id, "device id");
      await withHub(cmd, async (nc) => {
        const reg = await Registry.open(nc);
        await mustBeEnrolled(reg, id);
        const revoked = await requestRevoke(nc, id);
        await reg.remove(id);
        if (opts.json) printJson({ id, removed: true, revoked });
        else process.stdout.write(`removed ${id} (${revoked.length} credential(s) revoked)\n`);
      });
    });
  device
    .command("revoke <id>")
    .description("revoke every credential of a device: the hub drops its link and refuses it from now on (it stays enrolled)")
    .option("--json", "print the revoked user keys as JSON")
    .addHelpText("after", "\nExamples:\n  canopy device revoke pi-01\n  canopy device rotate pi-01 --bundle pi-01.json   # new credentials, old ones revoked")
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      checkId(id, "device id");
      await withHub(cmd, async (nc) => {
        const revoked = await requestRevoke(nc, id);
        if (opts.json) printJson({ id, revoked });
        else process.stdout.write(`revoked ${revoked.length} credential(s) of ${id}\n`);
      });
    });
  device
    .command("rotate <id>")
    .description("issue new credentials for a device (new bundle or join token) and revoke all its earlier ones")
    .option("--bundle <file>", "write the new enrollment bundle (0600) here instead of printing a join token")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  canopy device rotate pi-01 --bundle pi-01.json\n  # then on the device: canopy agent --bundle pi-01.json --data /var/lib/canopy")
    .action(async (id: string, opts: { bundle?: string; json?: boolean }, cmd: Command) => {
      checkId(id, "device id");
      await withHub(cmd, async (nc) => {
        const reg = await Registry.open(nc);
        await mustBeEnrolled(reg, id);
        const minted = await requestMint(nc, id);
        const revoked = await requestRevoke(nc, id, minted.userKey);
        const out = await deliver(minted.bundle, opts.bundle);
        if (opts.json) printJson({ id, userKey: minted.userKey, revoked, ...out });
        else {
          process.stdout.write(`new credentials for ${id}; ${revoked.length} earlier credential(s) revoked\n`);
          printEnrollment(out, id);
        }
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
              diskFull: v.status?.storage?.full === true,
              lastSeenMs: v.lastSeenMs ?? null,
              status: v.status ?? null,
            })),
          );
          return;
        }
        const rows = views.map((v) => [
          v.record.id,
          v.record.groups.join(",") || "-",
          (v.online ? "online" : "offline") + (v.status?.storage?.full ? ",disk_full" : ""),
          age(v.lastSeenMs),
          [v.status?.facts?.os?.distro, v.status?.facts?.os?.release].filter(Boolean).join(" ") || "-",
          v.status?.agent.version ?? "-",
        ]);
        process.stdout.write(table(["DEVICE", "GROUPS", "STATE", "LAST SEEN", "OS", "AGENT"], rows));
        process.stdout.write(`${views.filter((v) => v.online).length}/${views.length} online\n`);
      });
    });
}
