import type { AgentModule } from "./context.js";
import type { AgentOptions } from "./options.js";
import { ConfigModule } from "./config/module.js";
import { CommandsModule } from "./commands/index.js";
import { QueryModule } from "./query/module.js";
import { McuModule } from "./mcus/module.js";

/** The agent's feature modules, in start order. */
export function agentModules(_o: AgentOptions): AgentModule[] {
  return [new ConfigModule(), new CommandsModule(), new QueryModule(), new McuModule()];
}
