import type { Command } from "commander";
import { CanopyError, ErrorCode, checkId, parseDuration, parseFirmwareRef, type FlashEvent } from "@canopy/protocol";
import { sendFlash, watchFlash } from "../../firmware/flash.js";
import { shutdownSignal, withHub } from "../context.js";
import { bytes, printJson } from "../output.js";

interface FlashOpts {
  device: string;
  mcu: string;
  firmware: string;
  applyAt?: string;
  confirmWithin: string;
  flasher?: string;
  ttl: string;
  wait?: boolean;
  timeout: string;
  json?: boolean;
}

export function registerFlash(program: Command): void {
  program
    .command("flash")
    .description("flash a stored firmware image to one MCU (download with resume, write, trial boot, confirm or roll back)")
    .requiredOption("-d, --device <id>", "the device the MCU is attached to")
    .requiredOption("-m, --mcu <id>", "the MCU")
    .requiredOption("-f, --firmware <board@version>", "the image (canopy firmware list)")
    .option("--apply-at <time>", "download and verify now, write at this time (ISO 8601, or a delay like 10m)")
    .option("--confirm-within <duration>", "the new image must confirm within this, else the bootloader reverts", "15s")
    .option("--flasher <name>", "flasher plugin (default canopy: the Canopy serial bootloader)")
    .option("--ttl <duration>", "give up if the device does not start it within this", "24h")
    .option("--wait", "follow the flash to its end: live progress, exit 0 only when confirmed")
    .option("--timeout <duration>", "with --wait: how long to follow", "10m")
    .option("--json", "print the command record (or, with --wait, one JSON progress event per line)")
    .addHelpText(
      "after",
      `
States: queued → downloading → flashing → verifying → booting → confirmed | rolled_back | failed
(each phase has a deadline; every end state says why). Exit codes: 0 queued (with --wait: confirmed),
1 rolled back, failed or not finished within --timeout, 2 bad usage.

Examples:
  canopy flash --device pi-01 --mcu m1 --firmware rp2040@1.4.0 --wait
  canopy flash --device pi-01 --mcu m1 --firmware rp2040@1.4.0 --apply-at 2026-12-01T02:00:00Z
  canopy flash --device pi-01 --mcu m1 --firmware rp2040@1.4.0 --wait --json`,
    )
    .action(async (o: FlashOpts, cmd: Command) => {
      checkId(o.device, "device id");
      checkId(o.mcu, "mcu id");
      const { board, version } = parseFirmwareRef(o.firmware);
      const confirmWithinMs = parseDuration(o.confirmWithin, "--confirm-within");
      const ttlMs = parseDuration(o.ttl, "--ttl");
      const timeoutMs = parseDuration(o.timeout, "--timeout");
      const applyAt = o.applyAt === undefined ? undefined : parseApplyAt(o.applyAt);
      await withHub(cmd, async (nc) => {
        const { record } = await sendFlash(nc, {
          device: o.device, mcu: o.mcu, board, version, confirmWithinMs, ttlMs, by: `cli:${process.env.USER ?? "unknown"}`,
          ...(applyAt !== undefined ? { applyAt } : {}), ...(o.flasher ? { flasher: o.flasher } : {}),
        });
        if (!o.wait) {
          if (o.json) printJson(record);
          else process.stdout.write(`${record.id}\n`);
          return;
        }
        const { signal } = shutdownSignal();
        const print = (e: FlashEvent): void => {
          if (o.json) process.stdout.write(`${JSON.stringify({ device: o.device, ...e })}\n`);
          else process.stdout.write(`${progressLine(e)}\n`);
        };
        const out = await watchFlash(nc, record, o.mcu, version, timeoutMs, print, signal);
        if (o.json) process.stdout.write(`${JSON.stringify({ final: true, ...out })}\n`);
        else process.stdout.write(`${out.state}: ${out.detail}${out.runningVersion ? ` (running ${out.runningVersion})` : ""}\n`);
        if (out.state !== "confirmed") process.exitCode = 1;
      });
    });
}

function progressLine(e: FlashEvent): string {
  const pct = e.total > 0 ? Math.floor((e.bytes / e.total) * 100) : 0;
  const width = 24;
  const bar = "#".repeat(Math.round((pct / 100) * width)).padEnd(width, ".");
  const rate = e.rate > 0 ? `  ${bytes(e.rate)}/s` : "";
  return `${e.state.padEnd(11)} [${bar}] ${String(pct).padStart(3)}%  ${bytes(e.bytes)}/${bytes(e.total)}${rate}${e.detail ? `  ${e.detail}` : ""}`;
}

function parseApplyAt(s: string): number {
  if (/^\d+(ms|s|m|h|d)$/.test(s)) return Date.now() + parseDuration(s, "--apply-at");
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new CanopyError(ErrorCode.InvalidInput, `--apply-at ${JSON.stringify(s)}: give an ISO 8601 time or a delay like 10m`);
  return t;
}
