import type { Command } from "commander";

/**
 * `agent`, `bridge` and `sim fleet|mcu` are dispatched by bin/canopy.js to the agent and
 * firmware-bridge packages before this program runs; they are listed here so `canopy --help` shows
 * the whole tool, and `canopy sim` / `canopy sim --help` explain the simulators.
 */
export function registerPartStubs(program: Command): void {
  program.command("agent").description("run the device agent (see: canopy agent --help)").helpOption(false);
  program.command("bridge").description("run the firmware bridge for MCUs (see: canopy bridge --help)").helpOption(false);
  const sim = program
    .command("sim")
    .description("simulators: 'sim fleet' (agents), 'sim mcu' (microcontroller)")
    .addHelpText(
      "after",
      `
Examples:
  canopy sim fleet --devices 200                                    # see: canopy sim fleet --help
  canopy sim mcu --id m1 --serial /tmp/mcu-b --binary --rate 10     # see: canopy sim mcu --help`,
    )
    .action(() => sim.outputHelp());
  sim.command("fleet").description("N lightweight simulated agents in one process (see: canopy sim fleet --help)").helpOption(false);
  sim.command("mcu").description("a simulated microcontroller on serial or MQTT (see: canopy sim mcu --help)").helpOption(false);
}
