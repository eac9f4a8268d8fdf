import { readFile } from "node:fs/promises";
import { Option, type Command } from "commander";
import { CanopyError, ErrorCode, FIRMWARE_FORMATS, checkId, checkVersion, type FirmwareFormat } from "@canopy/protocol";
import { FirmwareStore } from "../../firmware/store.js";
import { withHub } from "../context.js";
import { registerFirmwareRollout } from "./firmware-rollout.js";
import { registerFirmwareKeygen } from "./firmware-keygen.js";
import { loadPrivateKey, signManifest } from "../../firmware/signing.js";
import { age, bytes, printJson, table } from "../output.js";

export function registerFirmware(program: Command): void {
  const fw = program
    .command("firmware")
    .description("MCU firmware images in the hub's object store (board, version, format, sha256)")
    .addHelpText(
      "after",
      `
Examples:
  canopy firmware upload build/app.bin --board rp2040 --fw-version 1.4.0
  canopy firmware upload app.hex --board uno --fw-version 2.0.1 --format avr-hex --sha256 3f5c…
  canopy firmware list --json
  canopy firmware rm --board rp2040 --fw-version 1.3.9
  canopy flash --device pi-01 --mcu m1 --firmware rp2040@1.4.0 --wait
  canopy firmware rollout --board rp2040 --fw-version 1.4.0 --group lab --waves 10%,50%,100%`,
    );
  registerFirmwareRollout(fw);
  registerFirmwareKeygen(fw);
  fw.command("upload <file>")
    .description("check the image (format, --sha256) and store it as BOARD/VERSION; nothing is stored if a check fails")
    .requiredOption("--board <board>", "board id (e.g. rp2040, uno, esp32-c3)")
    .requiredOption("--fw-version <version>", "firmware version, e.g. 1.4.0 (`--version` is canopy's own)")
    .addOption(new Option("--format <format>", "image format").choices([...FIRMWARE_FORMATS]).default("bin"))
    .option("--sha256 <hex>", "refuse the upload unless the file has this sha256")
    .option("--sign-key <file>", "sign the manifest with this Ed25519 key (canopy firmware keygen); needed once the fleet has a signing key")
    .option("--json", "print the manifest as JSON")
    .action(async (file: string, opts: { board: string; fwVersion: string; format: FirmwareFormat; sha256?: string; signKey?: string; json?: boolean }, cmd: Command) => {
      const o = { ...opts, version: opts.fwVersion };
      checkId(o.board, "board");
      checkVersion(o.version);
      if (o.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(o.sha256)) throw new CanopyError(ErrorCode.InvalidInput, "--sha256 must be 64 hex digits");
      let data: Buffer;
      try {
        data = await readFile(file);
      } catch (err) {
        throw new CanopyError(ErrorCode.InvalidInput, `cannot read ${file}: ${(err as Error).message}`);
      }
      const signKey = o.signKey === undefined ? undefined : await loadPrivateKey(o.signKey);
      const prepared = FirmwareStore.prepare(data, { ...o, by: `cli:${process.env.USER ?? "unknown"}` });
      const manifest = signKey ? signManifest(prepared, signKey) : prepared;
      await withHub(cmd, async (nc) => {
        await (await FirmwareStore.open(nc)).upload(data, manifest);
        if (o.json) printJson(manifest);
        else process.stdout.write(`${manifest.board}@${manifest.version}  ${manifest.format}  ${bytes(manifest.size)}  sha256 ${manifest.sha256}${manifest.signedBy ? `  signed by ${manifest.signedBy.slice(0, 8)}…` : ""}\n`);
      });
    });
  fw.command("list")
    .description("stored images, newest first per board")
    .option("--board <board>", "only this board")
    .option("--json", "machine-readable output")
    .action(async (o: { board?: string; json?: boolean }, cmd: Command) => {
      if (o.board) checkId(o.board, "board");
      await withHub(cmd, async (nc) => {
        const list = (await (await FirmwareStore.open(nc)).list()).filter((m) => !o.board || m.board === o.board);
        if (o.json) return printJson(list);
        const now = Date.now();
        process.stdout.write(
          table(
            ["BOARD", "VERSION", "FORMAT", "SIZE", "SHA256", "UPLOADED"],
            list.map((m) => [m.board, m.version, m.format, bytes(m.size), m.sha256.slice(0, 12), `${age(now - m.uploadedAt)} by ${m.uploadedBy}`]),
          ),
        );
      });
    });
  fw.command("rm")
    .description("delete an image (devices that cached it keep their copy)")
    .requiredOption("--board <board>", "board id")
    .requiredOption("--fw-version <version>", "firmware version")
    .option("--json", "print {removed} as JSON")
    .action(async (opts: { board: string; fwVersion: string; json?: boolean }, cmd: Command) => {
      const o = { ...opts, version: opts.fwVersion };
      checkId(o.board, "board");
      checkVersion(o.version);
      await withHub(cmd, async (nc) => {
        const removed = await (await FirmwareStore.open(nc)).remove(o.board, o.version);
        if (o.json) printJson({ removed });
        else process.stdout.write(removed ? `removed ${o.board}@${o.version}\n` : `no ${o.board}@${o.version}\n`);
        if (!removed) process.exitCode = 1;
      });
    });
}
