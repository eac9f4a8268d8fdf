import { Backoff, CanopyError, ErrorCode, sleep } from "@canopy/protocol";
import type { HandlerContext } from "../commands/registry.js";
import { localRequest } from "../commands/handlers/local.js";

/**
 * A leaf-local request to the firmware bridge. While the agent's own bridge (re)starts nobody
 * answers, and nobody got the request: it is asked again with backoff until `retryUntil`. A device
 * whose agent runs no bridge fails at once (UNAVAILABLE).
 */
export async function requestBridge(
  ctx: Pick<HandlerContext, "nc" | "options" | "command">,
  subject: string,
  body: unknown,
  timeoutMs: number,
  signal: AbortSignal,
  who: string,
  /** On the command's clock (`ctx.command.now()`). */
  retryUntil: number,
): Promise<unknown> {
  const bridge = ctx.options.bridge;
  const supervised = !!bridge && (bridge.serial.length > 0 || !!bridge.mqtt);
  const backoff = new Backoff({ initialMs: 500, maxMs: 5_000 });
  for (;;) {
    try {
      return await localRequest(ctx.nc, subject, body, timeoutMs, signal, who);
    } catch (err) {
      const left = retryUntil - ctx.command.now();
      if (!(supervised && err instanceof CanopyError && err.code === ErrorCode.Unavailable && left > 0 && !signal.aborted)) throw err;
      await sleep(Math.min(backoff.next(), left), signal);
    }
  }
}
