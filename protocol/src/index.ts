export * from "./errors.js";
export * from "./ids.js";
export * from "./subjects.js";
export * from "./schemas/common.js";
export * from "./schemas/device.js";
export * from "./runtime/backoff.js";
export * from "./runtime/nats-server.js";
export * from "./runtime/server-config.js";
