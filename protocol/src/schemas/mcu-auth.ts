import { z } from "zod";
import { Id } from "./common.js";
import { SCRYPT_HASH_RE } from "../secrets/scrypt.js";

/**
 * Per-MCU MQTT credentials. `canopy mcu creds` makes the password, hashes it, and queues the built-in
 * command `MCU_CREDS_COMMAND` with only the hash; the agent hands it to the bridge on the leaf-local
 * `BRIDGE_CREDS_SUBJECT`, which stores it in LMDB bound to the MQTT client id (= MCU id = user name).
 */
export const BRIDGE_CREDS_SUBJECT = "local.bridge.creds";
export const MCU_CREDS_COMMAND = "bridge.creds";

export const McuCredsArgs = z
  .object({
    mcu: Id,
    hash: z.string().regex(SCRYPT_HASH_RE, "must be a scrypt$N$salt$hash string"),
  })
  .strict();
export type McuCredsArgs = z.infer<typeof McuCredsArgs>;

export const McuCredsReply = z.object({ mcu: Id, stored: z.boolean(), error: z.string().optional() });
export type McuCredsReply = z.infer<typeof McuCredsReply>;
