import type { Command } from "commander";
import { checkId } from "@canopy/protocol";
import { Registry } from "../../registry/devices.js";
import { withHub } from "../context.js";
import { age, printJson, table } from "../output.js";
import { registerMcuCreds } from "./mcu-creds.js";

export function registerMcu(program: Command): void {
  const mcu = program.command("mcu").description("microcontrollers attached to devices");
  registerMcuCreds(mcu);
  mcu
    .command("list")
    .description("every MCU of the fleet, as the devices last reported them (bridge registry): board, firmware, image hash, last flash")
    .option("-d, --device <id>", "only this device's MCUs")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  canopy mcu list\n  canopy mcu list --device pi-01 --json")
    .action(async (o: { device?: string; json?: boolean }, cmd: Command) => {
      if (o.device) checkId(o.device, "device id");
      await withHub(cmd, async (nc) => {
        const now = Date.now();
        const rows = (await (await Registry.open(nc)).view(now))
          .filter((v) => !o.device || v.record.id === o.device)
          .flatMap((v) =>
            (v.status?.mcus ?? []).map((m) => ({
              device: v.record.id,
              deviceOnline: v.online,
              ...m,
              // An MCU is known online only while its device reports.
              online: m.online && v.online,
              reportAgeMs: v.lastSeenMs ?? null,
            })),
          );
        if (o.json) {
          printJson(rows);
          return;
        }
        process.stdout.write(
          table(
            ["DEVICE", "MCU", "BOARD", "FIRMWARE", "IMAGE", "LINK", "STATE", "LAST SEEN", "LAST FLASH"],
            rows.map((r) => [
              r.device,
              r.id,
              r.board,
              r.firmware,
              r.imageSha256?.slice(0, 12) ?? "-",
              r.link,
              r.online ? "online" : "offline",
              age(now - r.lastSeen),
              r.lastFlash ? `${r.lastFlash.state} ${r.lastFlash.version} ${age(now - r.lastFlash.at)} ago` : "-",
            ]),
          ),
        );
        process.stdout.write(`${rows.filter((r) => r.online).length}/${rows.length} online\n`);
      });
    });
}
