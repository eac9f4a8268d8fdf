export { CommandsModule } from "./module.js";
export { HandlerRegistry, defineHandler, type CommandHandler, type HandlerContext } from "./registry.js";
export { builtinHandlers } from "./handlers/index.js";
