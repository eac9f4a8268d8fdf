import type { GatewayTask } from "../service/gateway.js";
import { createLogger, type Logger } from "../logging.js";
import { rolloutTask } from "../rollout/task.js";
import { FirmwareRolloutStore } from "./rollout-model.js";
import { firmwareTarget } from "./rollout-target.js";

/** Steps every live firmware rollout (the config rollouts' wave engine with the firmware target). */
export function firmwareRolloutTask(log: Logger = createLogger(undefined, "gateway").child({ task: "firmware-rollouts" })): GatewayTask {
  return rolloutTask(
    "firmware-rollouts",
    async (nc) => ({ store: await FirmwareRolloutStore.open(nc), target: () => Promise.resolve(firmwareTarget(nc, log)) }),
    log,
  );
}
