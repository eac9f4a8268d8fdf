import type { Command } from "commander";
import { jetstreamManager } from "@nats-io/jetstream";
import { Assets, canopyVersion } from "@canopy/protocol";
import { withHub } from "../context.js";
import { printJson, table } from "../output.js";
import { Registry } from "../../registry/devices.js";

/** `canopy hub status`: which engine and JetStream the hub runs, and how big the fleet is. */
export function registerHubStatus(program: Command): void {
  const hub = program.commands.find((c) => c.name() === "hub");
  if (!hub) return;
  hub
    .command("status")
    .description("the hub's nats-server version, JetStream domain and usage, security, and fleet size")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy hub status\n  canopy --context prod hub status --json")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withHub(cmd, async (nc) => {
        const info = nc.info;
        const jsm = await jetstreamManager(nc);
        const acct = await jsm.getAccountInfo();
        const shards: string[] = [];
        for await (const n of jsm.streams.names()) if (n.startsWith(Assets.fleetUpShardPrefix)) shards.push(n);
        const view = await (await Registry.open(nc)).view();
        const status = {
          canopy: canopyVersion(),
          server: nc.getServer(),
          natsServer: { version: info?.version ?? "unknown", name: info?.server_name ?? "", id: info?.server_id ?? "" },
          security: { authRequired: info?.auth_required === true, tlsRequired: info?.tls_required === true },
          jetstream: { domain: acct.domain ?? null, streams: acct.streams, consumers: acct.consumers, storageBytes: acct.storage },
          devices: { enrolled: view.length, online: view.filter((v) => v.online).length },
          shards: shards.sort(),
          rttMs: Math.round(await nc.rtt()),
        };
        if (o.json) return printJson(status);
        process.stdout.write(
          table(
            ["", ""],
            [
              ["canopy", status.canopy],
              ["nats-server", `${status.natsServer.version} (${status.natsServer.name})`],
              ["server", `${status.server} (rtt ${status.rttMs} ms)`],
              ["auth", status.security.authRequired ? "required" : "off (no credentials required)"],
              ["tls", status.security.tlsRequired ? "required" : "off"],
              ["jetstream", `domain ${status.jetstream.domain ?? "-"}, ${status.jetstream.streams} streams, ${status.jetstream.consumers} consumers, ${status.jetstream.storageBytes} bytes`],
              ["devices", `${status.devices.enrolled} enrolled, ${status.devices.online} online, ${status.shards.length} shard(s)`],
            ],
          ).replace(/^\s*\n/, ""),
        );
      });
    });
}
