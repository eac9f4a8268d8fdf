import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { BRIDGE_MCUS_SUBJECT, BRIDGE_STATS_SUBJECT } from "@canopy/protocol";

const enc = new TextEncoder();

/**
 * Core-NATS request handlers on the leaf: `local.bridge.mcus` → `McuSummary[]` (the agent folds it into
 * the device's status) and `local.bridge.stats` → counters, publish totals, memory.
 */
export function answerQueries(nc: NatsConnection, mcus: () => unknown, stats: () => unknown): Subscription[] {
  const reply = (subject: string, body: () => unknown): Subscription =>
    nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        // Tests of bounded memory run the bridge with --expose-gc and ask for a collection first.
        // Two collections a turn apart, so objects freed by finalizers (lmdb, sockets) are gone too.
        const gc = (globalThis as { gc?: () => void }).gc;
        if (msg.string() !== "gc" || !gc) {
          msg.respond(enc.encode(JSON.stringify(body())));
          return;
        }
        gc();
        setTimeout(() => {
          gc();
          msg.respond(enc.encode(JSON.stringify(body())));
        }, 50);
      },
    });
  return [reply(BRIDGE_MCUS_SUBJECT, mcus), reply(BRIDGE_STATS_SUBJECT, stats)];
}
