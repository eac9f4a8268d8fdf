import { z } from "zod";
import {
  CanopyError,
  ErrorCode,
  Id,
  McuCommandResult,
  Subjects,
  checkId,
  mcuPayload,
  type McuCommandRequestInput,
} from "@canopy/protocol";
import { defineHandler } from "../registry.js";
import { requestBridge } from "../../mcus/bridge-request.js";

/** One request to the bridge holds for an offline MCU at most this long; the handler then asks again. */
const MAX_HOLD_MS = 60_000;

/**
 * `mcu.<name>` with `--arg mcu=<id>`: a core request to the firmware bridge on the leaf-local
 * `local.<dev>.mcu.<mcu>.cmd.<name>` (never a core publish on `cmd.*`: the hub's CMD stream would
 * store it). The MCU's ack is the result: `ok` → succeeded with its detail, `error` → failed with it.
 * An MCU that is offline (sleeping) is waited for until the command's TTL ends, then `expired`; an
 * MCU the bridge has never seen is `rejected`. The other args are the MCU's payload (`mcuPayload`).
 */
export const mcuCommand = defineHandler({
  name: "mcu.",
  args: z.object({ mcu: Id, ackTimeoutMs: z.coerce.number().int().min(100).max(300_000).default(10_000) }).passthrough(),
  timeoutMs: 30_000,
  concurrent: true,
  untilTtl: true,
  async run(args, signal, ctx, name) {
    const command = checkId(name.slice("mcu.".length), "id");
    const { mcu, ackTimeoutMs, ...rest } = args;
    const subject = Subjects.localMcuCommand(ctx.device, mcu, command);
    const deadline = ctx.command.createdAt + ctx.command.ttlMs;
    const who = `the firmware bridge (MCU ${mcu})`;
    for (;;) {
      const left = deadline - ctx.command.now();
      if (left <= 0) throw new CanopyError(ErrorCode.Expired, `MCU ${mcu} stayed offline until the command's TTL ended`);
      const waitMs = Math.min(left, MAX_HOLD_MS);
      const body: McuCommandRequestInput = { id: ctx.command.id, payload: mcuPayload(rest), waitMs, ackTimeoutMs };
      const reply = await requestBridge(ctx, subject, body, waitMs + ackTimeoutMs + 2_000, signal, who, deadline);
      const r = McuCommandResult.parse(reply);
      switch (r.status) {
        case "ok":
          return { mcu, detail: r.detail };
        case "error":
          throw new CanopyError(ErrorCode.McuError, r.detail || `MCU ${mcu} answered with an error`);
        case "offline":
          continue;
        case "unknown":
          throw new CanopyError(ErrorCode.Rejected, r.detail);
        case "timeout":
          throw new CanopyError(ErrorCode.Timeout, r.detail);
        case "undeliverable":
          throw new CanopyError(ErrorCode.Unavailable, `MCU ${mcu}: ${r.detail}`);
      }
    }
  },
});
