export * from "./ports.js";
export * from "./proxy.js";
export * from "./servers.js";
export * from "./canopy.js";
export * from "./fleet.js";
export * from "./procs.js";
export * from "./upstream.js";
export * from "./clock.js";
