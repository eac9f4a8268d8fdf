import type { Command } from "commander";

/**
 * `agent`, `bridge` and `sim` are dispatched by bin/canopy.js to the agent and firmware-bridge
 * packages before this program runs; they are listed here so `canopy --help` shows the whole tool.
 */
export function registerPartStubs(program: Command): void {
  program.command("agent").description("run the device agent (see: canopy agent --help)").helpOption(false);
  program.command("bridge").description("run the firmware bridge for MCUs (see: canopy bridge --help)").helpOption(false);
  program.command("sim").description("simulators: 'sim fleet' (agents), 'sim mcu' (microcontroller)").helpOption(false);
}
