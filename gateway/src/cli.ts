import { Command, CommanderError } from "commander";
import { CanopyError, canopyVersion, errorMessage } from "@canopy/protocol";
import { registerHub } from "./cli/commands/hub.js";
import { registerGateway } from "./cli/commands/gateway.js";
import { registerDevice } from "./cli/commands/device.js";
import { registerDev } from "./cli/commands/dev.js";
import { registerUpstream } from "./cli/commands/upstream.js";
import { registerPartStubs } from "./cli/commands/parts.js";
import { registerConfig } from "./cli/commands/config.js";
import { registerCmd } from "./cli/commands/cmd.js";
import { registerMcu } from "./cli/commands/mcu.js";
import { registerQuery } from "./cli/commands/query.js";
import { registerFirmware } from "./cli/commands/firmware.js";
import { registerFlash } from "./cli/commands/flash.js";
import { registerConsole } from "./cli/commands/console.js";
import { registerContext } from "./cli/commands/contexts.js";
import { registerCompletion } from "./cli/commands/completion.js";
import { registerHubStatus } from "./cli/commands/hub-status.js";
import { registerDoctor } from "./cli/commands/doctor.js";
import { registerPub } from "./cli/commands/pub.js";
import { isTimeout } from "./cli/connect-check.js";

/**
 * `canopy` for operators and the hub. Exit codes scripts can trust: 0 ok, 1 runtime failure,
 * 2 bad usage or input (bad id, bad flag, bad value).
 */
export function buildProgram(): Command {
  const program = new Command("canopy")
    .description("Canopy: fleet manager for Raspberry Pi-class devices and their microcontrollers, on NATS")
    // Long form only: commander reads the root's short flags anywhere in the line, so a value such as
    // `--group -V.` printed the version and exited 0 without doing anything. `-V` is read in main(),
    // and only as the first argument.
    .version(canopyVersion(), "--version", "print Canopy's version (also -V, as the first argument)")
    .option("-s, --server <url>", "hub NATS URL (env CANOPY_SERVER; else --context or the selected context)", undefined)
    .option("--context <name>", "a stored hub target, see 'canopy context' (env CANOPY_CONTEXT)")
    .option("--creds <file>", "NATS credentials for the hub (env CANOPY_CREDS; a hub writes <data>/creds/admin.creds)")
    .option("--tls-ca <file>", "CA of the hub's TLS client port (env CANOPY_TLS_CA)")
    .option("--log-level <level>", "trace|debug|info|warn|error (env CANOPY_LOG_LEVEL)")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .addHelpText(
      "after",
      `
Examples:
  canopy dev up                                  # local hub + 3 demo devices on loopback
  canopy hub start --data /var/lib/canopy/hub    # run a hub (nats-server + gateway)
  canopy device add pi-01 --group lab            # enroll a device
  canopy agent --device pi-01 --hub nats-leaf://hub.example.net:7422 --data /var/lib/canopy
  canopy devices --json                          # fleet with presence and facts
  canopy tail --device pi-01 --follow            # upstream data as it reaches the hub`,
    );
  program.hook("preAction", (cmd) => {
    const level = cmd.optsWithGlobals<{ logLevel?: string }>().logLevel;
    if (level) process.env.CANOPY_LOG_LEVEL = level;
  });
  registerHub(program);
  registerGateway(program);
  registerDevice(program);
  registerUpstream(program);
  registerDev(program);
  registerConfig(program);
  registerPartStubs(program);
  registerCmd(program);
  registerMcu(program);
  registerQuery(program);
  registerFirmware(program);
  registerFlash(program);
  registerConsole(program);
  registerContext(program);
  registerCompletion(program);
  registerHubStatus(program);
  registerDoctor(program);
  registerPub(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "-V") argv = ["--version", ...argv.slice(1)];
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; usage mistakes were already printed by it.
    return err.exitCode === 0 ? 0 : 2;
  }
  // nats.js says only "timeout": say who did not answer, and that it is usually brief.
  const message = isTimeout(err)
    ? "the hub did not answer in time (a hub cluster elects new leaders for a few seconds after a node goes down; a busy hub answers late); try again"
    : errorMessage(err);
  process.stderr.write(`error: ${message}\n`);
  if (err instanceof CanopyError && err.isUsage) return 2;
  return 1;
}
