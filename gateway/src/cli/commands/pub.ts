import type { Command } from "commander";
import { randomUUID } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { CanopyError, ErrorCode, checkId, drainOrClose, errorMessage } from "@canopy/protocol";
import { Registry } from "../../registry/devices.js";
import { withHub } from "../context.js";
import { printJson } from "../output.js";

interface PubFlags {
  device: string;
  leaf?: string;
  json?: boolean;
}

/**
 * `canopy pub`: publish as a device app would, on the device's own leaf, into its UP stream (stored on
 * the device, forwarded to the hub). No `nats` CLI needed; the leaf URL comes from the device's status.
 */
export function registerPub(program: Command): void {
  program
    .command("pub <subject> <value>")
    .description("publish a message on a device's leaf as a device app does (JetStream, into its UP stream)")
    .requiredOption("-d, --device <id>", "the device")
    .option("--leaf <url>", "the device's leaf client URL (default: the one the device reports to the hub)")
    .option("--json", "print the stream ack as JSON")
    .addHelpText(
      "after",
      `
The subject is taken relative to up.<device>. unless it starts with "up.": tlm.temp → up.<device>.tlm.temp.

Examples:
  canopy pub --device dev-1 tlm.temp 21.5
  canopy pub --device pi-01 --leaf nats://127.0.0.1:4223 evt.door '{"open":true}' --json`,
    )
    .action(async (subject: string, value: string, o: PubFlags, cmd: Command) => {
      const device = checkId(o.device, "device id");
      const full = subject.startsWith("up.") ? subject : `up.${device}.${subject}`;
      if (!full.startsWith(`up.${device}.`) || !/^up(\.[A-Za-z0-9_-]{1,64})+$/.test(full)) {
        throw new CanopyError(ErrorCode.InvalidInput, `subject ${JSON.stringify(subject)} must be within up.${device}.> (tokens of [A-Za-z0-9_-], no wildcards)`);
      }
      const leaf = o.leaf ?? (await withHub(cmd, async (nc) => (await (await Registry.open(nc)).status(device))?.leaf?.url));
      if (!leaf) throw new CanopyError(ErrorCode.NotFound, `device ${device} has not reported its leaf URL; give it with --leaf nats://HOST:PORT`);
      const nc = await connect({ servers: leaf, timeout: 5_000, maxReconnectAttempts: 0, name: "canopy-pub" }).catch((err: unknown) => {
        throw new CanopyError(ErrorCode.Unavailable, `cannot reach the leaf of ${device} at ${leaf} (${errorMessage(err)}); it listens on the device itself`, { cause: err });
      });
      try {
        const ack = await jetstream(nc).publish(full, value, { msgID: `${device}:cli:${randomUUID()}`, timeout: 5_000 });
        const rec = { device, subject: full, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate, leaf };
        if (o.json) printJson(rec);
        else process.stdout.write(`published ${full} on ${leaf}: ${ack.stream} seq ${ack.seq}\n`);
      } finally {
        await drainOrClose(nc);
      }
    });
}
