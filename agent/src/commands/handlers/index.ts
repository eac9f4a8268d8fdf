import type { CommandHandler } from "../registry.js";
import { basicHandlers } from "./basic.js";
import { wifiHandlers } from "./wifi.js";
import { mcuCommand } from "./mcu.js";
import { mcuCreds } from "./mcu-creds.js";
import { exec } from "./exec.js";
import { testHandlers } from "./test.js";
import { firmwareFlash } from "../../firmware/flash.js";

/** Every built-in handler; test handlers only when CANOPY_TEST_HANDLERS=1. */
export function builtinHandlers(env: NodeJS.ProcessEnv = process.env): CommandHandler[] {
  return [...basicHandlers, ...wifiHandlers, mcuCommand, mcuCreds, firmwareFlash, exec, ...testHandlers(env)];
}
