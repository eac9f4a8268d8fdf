import type { NatsConnection } from "@nats-io/transport-node";

/**
 * For long-running operator commands (`tail --follow`, `--watch`): says on stderr when the hub goes
 * away and comes back, and aborts `ac` when it stays away longer than `giveUpMs` or the connection
 * closes for good; `gaveUp()` then tells the caller to exit 1 instead of 0.
 */
export function watchHub(nc: NatsConnection, giveUpMs: number, ac: AbortController): { gaveUp: () => string | undefined } {
  let reason: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const giveUp = (why: string): void => {
    reason ??= why;
    ac.abort();
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (ac.signal.aborted) break;
      if (s.type === "disconnect" && !timer) {
        process.stderr.write(`hub connection lost (${s.server}); reconnecting…\n`);
        timer = setTimeout(() => giveUp(`the hub stayed unreachable for ${Math.round(giveUpMs / 1000)} s`), giveUpMs);
      } else if (s.type === "reconnect") {
        clearTimeout(timer);
        timer = undefined;
        process.stderr.write(`reconnected to the hub (${s.server}); resuming\n`);
      }
    }
  })().catch(() => undefined);
  void nc.closed().then((err) => {
    clearTimeout(timer);
    if (!ac.signal.aborted) giveUp(`the hub connection closed${err ? `: ${err.message}` : ""}`);
  });
  ac.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  return { gaveUp: () => reason };
}
