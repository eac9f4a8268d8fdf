import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { Assets, errorMessage } from "@canopy/protocol";
import type { GatewayTask } from "../service/gateway.js";
import { createLogger, type Logger } from "../logging.js";
import { Renderer } from "./render.js";
import { RolloutStore, type StoredRollout } from "./rollouts.js";
import { FleetView } from "./fleet.js";
import { ConfigLayers } from "./layers.js";
import { stepRollout, type StepDeps } from "./rollout-step.js";

const FULL_RENDER_EVERY_MS = 60_000;
const MAX_STEPS_PER_RUN = 8;

/**
 * Config rendering: re-renders the whole fleet when the registry (groups, new devices) or the
 * authored layers changed since the last pass, and once a minute regardless (drift repair). Cheap
 * when nothing changed: two stream-info requests.
 */
export function configRenderTask(log: Logger = createLogger(undefined, "gateway").child({ task: "config-render" })): GatewayTask {
  let seen = "";
  let lastFull = 0;
  return {
    name: "config-render",
    intervalMs: 2_000,
    async run(nc) {
      const kvm = new Kvm(nc);
      const [devices, layers] = await Promise.all([kvm.open(Assets.kvDevices), kvm.open(Assets.kvConfigSource)]);
      const mark = `${await lastSeq(devices)}:${await lastSeq(layers)}`;
      if (mark === seen && Date.now() - lastFull < FULL_RENDER_EVERY_MS) return;
      const res = await (await Renderer.open(nc)).render();
      seen = mark;
      lastFull = Date.now();
      if (res.written + res.removed > 0) log.info(res, "config rendered");
    },
  };
}

/** Steps every live rollout; one gateway holds the lease, the record in KV holds the progress. */
export function configRolloutTask(log: Logger = createLogger(undefined, "gateway").child({ task: "config-rollouts" })): GatewayTask {
  return {
    name: "config-rollouts",
    intervalMs: 1_000,
    async run(nc, signal) {
      const store = await RolloutStore.open(nc);
      const active = await store.active();
      if (active.length === 0) return;
      const deps: StepDeps = {
        store,
        renderer: await Renderer.open(nc),
        fleet: await FleetView.open(nc),
        layers: await ConfigLayers.open(nc),
        cfg: await new Kvm(nc).open(Assets.kvConfig),
        log,
      };
      for (const s of active) {
        let cur: StoredRollout = s;
        for (let i = 0; i < MAX_STEPS_PER_RUN && !signal.aborted; i++) {
          try {
            const next = await stepRollout(cur, deps);
            if (next.revision === cur.revision) break;
            cur = next;
          } catch (err) {
            // A lost compare-and-set (operator abort, another gateway) or a hub hiccup: retry next run.
            log.warn({ rollout: s.rollout.id, err: errorMessage(err) }, "rollout step failed");
            break;
          }
        }
      }
    },
  };
}

export function configTasks(): GatewayTask[] {
  return [configRenderTask(), configRolloutTask()];
}

async function lastSeq(kv: KV): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}
