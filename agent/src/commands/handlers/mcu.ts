import { z } from "zod";
import { Id, Subjects, checkId } from "@canopy/protocol";
import { defineHandler } from "../registry.js";
import { localRequest } from "./local.js";

/**
 * `mcu.<name>` with `--arg mcu=<id>`: a core request to the firmware bridge on the leaf-local
 * `local.mcu.<mcu>.cmd.<name>`. Never a core publish on `cmd.*`: the hub's CMD stream would store it.
 * The other args are the request body.
 */
export const mcuCommand = defineHandler({
  name: "mcu.",
  args: z.object({ mcu: Id, timeoutMs: z.coerce.number().int().min(100).max(60_000).default(10_000) }).passthrough(),
  timeoutMs: 65_000,
  async run(args, signal, ctx, name) {
    const command = checkId(name.slice("mcu.".length), "id");
    const { mcu, timeoutMs, ...body } = args;
    return localRequest(ctx.nc, Subjects.localMcuCommand(mcu, command), body, timeoutMs, signal, `the firmware bridge (MCU ${mcu})`);
  },
});
