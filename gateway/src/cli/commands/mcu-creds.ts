import type { Command } from "commander";
import { CanopyError, ErrorCode, MCU_CREDS_COMMAND, checkId, hashSecret, isTerminal, newSecret, parseDuration } from "@canopy/protocol";
import { CommandSender, RECORDED_WAIT_MS, ResultFeed, resolveTargets, untilRecorded, waitForCommands } from "../../commands/index.js";
import { shutdownSignal, withHub } from "../context.js";
import { printJson } from "../output.js";

const EXAMPLES = `
The password is made and hashed here; only the salted hash travels (as the built-in command
${MCU_CREDS_COMMAND}) and is stored on the device, bound to the MQTT client id = MCU id = user name.
Running it again replaces the MCU's password. The last line is username:password.

Exit codes: 0 stored on the device, 1 the device did not store it in time (the command stays queued
until --ttl; the printed password works once it is stored), 2 bad usage.

Examples:
  canopy mcu creds --device pi-01 --mcu plug1
  canopy mcu creds --device pi-01 --mcu plug1 --json
  canopy sim mcu --id plug1 --mqtt 127.0.0.1:1883 --username plug1 --password '<password>'`;

export function registerMcuCreds(mcu: Command): void {
  mcu
    .command("creds")
    .description("new MQTT credentials for one MCU of a device (stored hashed on the device)")
    .requiredOption("-d, --device <id>", "device the MCU connects to")
    .requiredOption("-m, --mcu <id>", "MCU id (its MQTT client id and user name)")
    .option("--ttl <duration>", "how long the command may wait for an offline device", "1h")
    .option("--timeout <duration>", "how long to wait for the device to store it", "30s")
    .option("--json", "print {device, mcu, username, password, command, state}")
    .addHelpText("after", EXAMPLES)
    .action(async (o: { device: string; mcu: string; ttl: string; timeout: string; json?: boolean }, command: Command) => {
      const device = checkId(o.device, "device id");
      const mcuId = checkId(o.mcu, "mcu id");
      const ttlMs = parseDuration(o.ttl, "--ttl");
      const timeoutMs = parseDuration(o.timeout, "--timeout");
      const password = newSecret();
      const hash = await hashSecret(password);
      await withHub(command, async (nc) => {
        await resolveTargets(nc, { device });
        const sender = await CommandSender.open(nc);
        const feed = await ResultFeed.open(sender.store, [device]);
        const sent = await sender.send({ device, name: MCU_CREDS_COMMAND, args: { mcu: mcuId, hash }, ttlMs, by: `cli:${process.env.USER ?? "unknown"}` });
        const { signal } = shutdownSignal();
        const { records } = await waitForCommands(sender.store, [sent], timeoutMs, signal, undefined, feed);
        await untilRecorded(sender.store, records.filter((r) => isTerminal(r.state)), RECORDED_WAIT_MS, signal, feed);
        feed.close();
        const rec = records[0] ?? sent;
        if (rec.state === "failed" || rec.state === "rejected" || rec.state === "expired" || rec.state === "cancelled") {
          throw new CanopyError(ErrorCode.Unavailable, `device ${device} did not store the credentials (${rec.state}): ${rec.error?.message ?? "no detail"}`);
        }
        const stored = rec.state === "succeeded";
        if (!stored) {
          process.stderr.write(`not stored on ${device} yet (command ${rec.id} is ${rec.state}); the password works once the device runs it\n`);
          process.exitCode = 1;
        }
        if (o.json) printJson({ device, mcu: mcuId, username: mcuId, password, command: rec.id, state: rec.state });
        else process.stdout.write(`${stored ? "stored" : "queued"} on ${device} (command ${rec.id})\n${mcuId}:${password}\n`);
      });
    });
}
