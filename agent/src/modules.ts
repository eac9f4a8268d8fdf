import type { AgentModule } from "./context.js";
import type { AgentOptions } from "./options.js";

/** The agent's feature modules, in start order. */
export function agentModules(_o: AgentOptions): AgentModule[] {
  return [];
}
