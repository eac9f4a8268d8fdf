import { CanopyError, ErrorCode, deadline, errorMessage, type CommandEvent, type CommandRequest } from "@canopy/protocol";
import type { CommandHandler, HandlerContext } from "./registry.js";

/** Results bigger than this would not fit an UP message comfortably; they become a failure instead. */
const MAX_RESULT_BYTES = 512 * 1024;

export type AbortReason = "cancelled" | "shutdown";

/**
 * Runs one handler under its timeout and the command's AbortController, and turns whatever happens
 * into the terminal event. A cancel or shutdown wins the race even if the handler ignores its signal
 * (its late outcome is dropped); a timeout aborts the handler's signal and fails the command.
 */
export async function runHandler(
  req: CommandRequest,
  handler: CommandHandler,
  args: unknown,
  ctx: HandlerContext,
  control: AbortController,
  times: { deliveredAt: number; startedAt: number },
  now: () => number = Date.now,
): Promise<CommandEvent> {
  const limitMs = handler.untilTtl ? Math.max(0, req.createdAt + req.ttlMs - now()) + handler.timeoutMs : handler.timeoutMs;
  const limit = deadline(limitMs, control.signal);
  const signal = limit.signal;
  const stopped = new Promise<"stopped">((resolve) => {
    if (control.signal.aborted) resolve("stopped");
    control.signal.addEventListener("abort", () => resolve("stopped"), { once: true });
  });
  const base = { id: req.id, device: req.device, ...times };
  const done = (state: CommandEvent["state"], extra: Partial<CommandEvent>): CommandEvent => {
    const at = now();
    return { ...base, state, at, finishedAt: at, ...extra };
  };
  try {
    const outcome = await Promise.race([handler.run(args, signal, ctx, req.name).then((value) => ({ value })), stopped]);
    if (outcome === "stopped") return stoppedEvent(control, done);
    const value = outcome.value ?? null;
    const size = Buffer.byteLength(JSON.stringify(value) ?? "null");
    if (size > MAX_RESULT_BYTES) {
      return done("failed", { error: { code: ErrorCode.Internal, message: `result of ${size} bytes exceeds ${MAX_RESULT_BYTES}` } });
    }
    return done("succeeded", { result: value });
  } catch (err) {
    if (control.signal.aborted) return stoppedEvent(control, done);
    if (signal.aborted) {
      return done("failed", { error: { code: ErrorCode.Timeout, message: `${req.name} timed out after ${limitMs} ms` } });
    }
    const e = err instanceof CanopyError ? err : new CanopyError(ErrorCode.Internal, errorMessage(err));
    const state = e.code === ErrorCode.Rejected ? "rejected" : e.code === ErrorCode.Expired ? "expired" : "failed";
    return done(state, { error: e.toWire() });
  } finally {
    limit.clear();
  }
}

function stoppedEvent(control: AbortController, done: (s: CommandEvent["state"], e: Partial<CommandEvent>) => CommandEvent): CommandEvent {
  const reason = control.signal.reason as AbortReason | undefined;
  if (reason === "cancelled") {
    return done("cancelled", { error: { code: ErrorCode.Cancelled, message: "cancelled by the operator while running" } });
  }
  return done("interrupted", { error: { code: ErrorCode.Unavailable, message: "the agent stopped while the command ran; it is not run again" } });
}
