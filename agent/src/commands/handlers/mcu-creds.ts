import { BRIDGE_CREDS_SUBJECT, MCU_CREDS_COMMAND, McuCredsArgs } from "@canopy/protocol";
import { defineHandler } from "../registry.js";
import { localRequest } from "./local.js";

/**
 * `bridge.creds` (sent by `canopy mcu creds`): hands an MCU's MQTT password hash to the firmware
 * bridge, which stores it bound to that client id. The argument is a salted scrypt hash, never the
 * password, so the command's record and the CMD stream hold nothing that logs an MCU in.
 */
export const mcuCreds = defineHandler({
  name: MCU_CREDS_COMMAND,
  args: McuCredsArgs,
  timeoutMs: 15_000,
  async run(args, signal, ctx) {
    return localRequest(ctx.nc, BRIDGE_CREDS_SUBJECT, args, 10_000, signal, "the firmware bridge");
  },
});
