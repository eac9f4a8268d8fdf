import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { Assets } from "@canopy/protocol";
import type { GatewayTask } from "../service/gateway.js";
import { createLogger, type Logger } from "../logging.js";
import { Renderer } from "./render.js";
import { RolloutStore } from "./rollouts.js";
import { FleetView } from "./fleet.js";
import { ConfigLayers } from "./layers.js";
import { configTarget } from "./rollout-step.js";
import { rolloutTask } from "../rollout/task.js";

const FULL_RENDER_EVERY_MS = 60_000;

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

/** Steps every live config rollout (the shared wave engine with the config target). */
export function configRolloutTask(log: Logger = createLogger(undefined, "gateway").child({ task: "config-rollouts" })): GatewayTask {
  return rolloutTask(
    "config-rollouts",
    async (nc) => {
      const store = await RolloutStore.open(nc);
      return {
        store,
        target: async () =>
          configTarget({
            store,
            renderer: await Renderer.open(nc),
            fleet: await FleetView.open(nc),
            layers: await ConfigLayers.open(nc),
            cfg: await new Kvm(nc).open(Assets.kvConfig),
            log,
          }),
      };
    },
    log,
  );
}

export function configTasks(): GatewayTask[] {
  return [configRenderTask(), configRolloutTask()];
}

async function lastSeq(kv: KV): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}
