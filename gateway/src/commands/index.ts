export { checkSelector, resolveTargets, type TargetSelector } from "./targets.js";
export { CommandSender, type SendOptions } from "./send.js";
export { CommandStore, newCommandId } from "./store.js";
export { commandResultsTask, ingestShard } from "./ingest.js";
export { LIVE_MAX, ResultFeed, waitForCommands } from "./wait.js";
export { applyEvent, recordFromEvent } from "./state.js";
