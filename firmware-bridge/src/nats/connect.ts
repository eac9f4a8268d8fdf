import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { Backoff, CanopyError, ErrorCode, errorMessage, sleep } from "@canopy/protocol";
import type { Logger } from "../log.js";

/**
 * Connects to the device's leaf server, retrying with jittered backoff until it answers: the agent may
 * still be starting it. Once connected, nats.js reconnects on its own (forever).
 */
export async function connectLeaf(url: string, name: string, log: Logger, signal: AbortSignal): Promise<NatsConnection> {
  const backoff = new Backoff({ initialMs: 250, maxMs: 5_000 });
  for (;;) {
    try {
      // noAsyncTraces: nats.js would otherwise build two Error objects (for stack traces) per request,
      // i.e. per JetStream publish: a third of the bridge's CPU under load.
      const nc = await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 500, pingInterval: 10_000, noAsyncTraces: true });
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === "disconnect" || s.type === "reconnect") log.warn({ status: s.type }, "leaf connection");
        }
      })();
      return nc;
    } catch (err) {
      if (backoff.attempts === 0 || backoff.attempts % 10 === 0) log.warn({ url, err: errorMessage(err) }, "cannot reach the leaf; retrying");
      if (!(await sleep(backoff.next(), signal))) {
        throw new CanopyError(ErrorCode.Cancelled, "stopped before the leaf answered", { cause: err });
      }
    }
  }
}
