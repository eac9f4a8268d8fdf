import { CanopyError, errorMessage } from "@canopy/protocol";
import { runBridge, type BridgeOptions } from "./bridge.js";
import { createLogger } from "./log.js";

/** How long a stop on SIGINT/SIGTERM may take before the process exits regardless. */
const STOP_LIMIT_MS = 10_000;

/**
 * Process wiring for `canopy bridge`: logger, signals, exit code. SIGINT/SIGTERM stop the bridge
 * cleanly (MCUs marked offline, registry flushed); a second signal exits at once, and a stop still
 * running after STOP_LIMIT_MS exits with 1.
 */
export async function mainBridge(opts: Omit<BridgeOptions, "log" | "onReady">, logLevel: string): Promise<number> {
  const log = createLogger(logLevel);
  const ctl = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(130);
    log.info({ signal: sig }, "stopping");
    // A clean stop takes a few seconds at most (each step is bounded); if one still hangs, exit anyway
    // rather than linger (seen: a bridge orphaned by its agent still running 5 min after SIGTERM).
    setTimeout(() => {
      log.error({ afterMs: STOP_LIMIT_MS }, "clean stop did not finish in time; exiting");
      log.flush();
      process.exit(1);
    }, STOP_LIMIT_MS).unref();
    ctl.abort(new CanopyError("CANCELLED", `received ${sig}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // An LMDB write that meets a full disk rejects its commit; one nobody awaited (a lastSeen or cursor
  // update) must not take the bridge down: the disk guard has new data refused until there is room.
  const onRejection = (err: unknown): void => {
    if (/Commit failed|No space left/i.test(errorMessage(err))) {
      log.warn({ err: errorMessage(err) }, "a background write failed (disk full?); continuing");
      return;
    }
    log.error({ err: errorMessage(err) }, "unhandled rejection");
    process.exit(1);
  };
  process.on("unhandledRejection", onRejection);
  try {
    await runBridge({ ...opts, log }, ctl.signal);
    // When the leaf died with us, something below nats.js/lmdb keeps the loop alive with no JS handle
    // left (seen on Node 20); everything is flushed and closed by now, so do not wait for it.
    setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
    return 0;
  } catch (err) {
    log.error({ err: errorMessage(err) }, "bridge failed");
    return err instanceof CanopyError && err.isUsage ? 2 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("unhandledRejection", onRejection);
    log.flush();
  }
}
