export { checkSelector, resolveTargets, type TargetSelector } from "./targets.js";
export { CommandSender, type SendOptions } from "./send.js";
export { CommandStore, newCommandId } from "./store.js";
export { commandResultsTask, ingestShard } from "./ingest.js";
export { LIVE_MAX, RECORDED_WAIT_MS, ResultFeed, untilRecorded, waitForCommands } from "./wait.js";
export { applyEvent, recordFromEvent } from "./state.js";
