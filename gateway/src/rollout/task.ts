import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage } from "@canopy/protocol";
import type { GatewayTask } from "../service/gateway.js";
import type { Logger } from "../logging.js";
import { stepWaves, type RolloutTarget, type RolloutWriter, type Stored } from "./engine.js";
import type { RolloutCore } from "./model.js";

const MAX_STEPS_PER_RUN = 8;

export interface RolloutKind<R extends RolloutCore> {
  store: RolloutWriter<R> & { active(): Promise<Array<Stored<R>>> };
  /** Built only when a rollout of this kind is active. */
  target(): Promise<RolloutTarget<R>>;
}

/** Steps every live rollout of one kind; one gateway holds the lease, the record in KV holds the progress. */
export function rolloutTask<R extends RolloutCore>(name: string, open: (nc: NatsConnection) => Promise<RolloutKind<R>>, log: Logger): GatewayTask {
  return {
    name,
    intervalMs: 1_000,
    async run(nc, signal) {
      const kind = await open(nc);
      const active = await kind.store.active();
      if (active.length === 0) return;
      const target = await kind.target();
      for (const s of active) {
        let cur = s;
        const rlog = log.child({ rollout: s.rollout.id });
        for (let i = 0; i < MAX_STEPS_PER_RUN && !signal.aborted; i++) {
          try {
            const next = await stepWaves(cur, target, kind.store, rlog, Date.now());
            if (next.revision === cur.revision) break;
            cur = next;
          } catch (err) {
            // A lost compare-and-set (operator abort, another gateway) or a hub hiccup: retry next run.
            rlog.warn({ err: errorMessage(err) }, "rollout step failed");
            break;
          }
        }
      }
    },
  };
}
