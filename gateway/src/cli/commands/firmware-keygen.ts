import type { Command } from "commander";
import { ConfigService } from "../../config/operations.js";
import { generateSigningKey, writePrivateKey } from "../../firmware/signing.js";
import { withHub } from "../context.js";
import { printJson } from "../output.js";

/** `canopy firmware keygen`: the fleet's Ed25519 firmware signing key. */
export function registerFirmwareKeygen(fw: Command): void {
  fw.command("keygen")
    .description("make the fleet's Ed25519 firmware signing key: the private key to a file (0600, never sent), the public key to every device (fleet config firmware.signingKey); devices then flash only signed images")
    .requiredOption("--out <file>", "where to write the private key (PEM); an existing file is never overwritten")
    .option("--no-fleet", "only write the key file; do not set firmware.signingKey for the fleet")
    .option("--json", "print {publicKey, file, fleet} as JSON")
    .addHelpText(
      "after",
      `
Examples:
  canopy firmware keygen --out ~/.canopy/firmware-signing.pem
  canopy firmware upload app.bin --board rp2040 --fw-version 1.5.0 --sign-key ~/.canopy/firmware-signing.pem
  canopy config unset firmware.signingKey --fleet     # stop requiring signatures`,
    )
    .action(async (o: { out: string; fleet: boolean; json?: boolean }, cmd: Command) => {
      const key = generateSigningKey();
      const publish = async (): Promise<void> => {
        if (!o.fleet) return;
        await withHub(cmd, async (nc) => void (await (await ConfigService.open(nc)).set({ kind: "fleet" }, "firmware.signingKey", key.publicKey)));
      };
      await writePrivateKey(o.out, key.privatePem);
      await publish();
      if (o.json) return printJson({ publicKey: key.publicKey, file: o.out, fleet: o.fleet });
      process.stdout.write(`private key: ${o.out} (keep it safe; it never leaves this machine)\npublic key: ${key.publicKey}\n`);
      process.stdout.write(o.fleet ? "fleet config firmware.signingKey set: devices now flash only images signed with this key\n" : "not set for the fleet (--no-fleet)\n");
    });
}
