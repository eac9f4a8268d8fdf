import { Command, CommanderError } from "commander";
import { CanopyError, canopyVersion, errorMessage } from "@canopy/protocol";
import { loadAgentOptions } from "./options.js";
import { runAgent } from "./main.js";
import { createLogger } from "./logging.js";
import { registerSim } from "./sim/cli.js";
import { readBundleArg } from "./identity/enroll.js";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function buildProgram(): Command {
  const program = new Command("canopy").exitOverride().showHelpAfterError("(run with --help for usage)");
  program
    .command("agent")
    .description("run the device agent: supervises the local leaf nats-server, keeps UP, reports presence")
    .option("--bundle <file>", "enroll with this bundle from 'canopy device add --bundle FILE' (stored under DATA)")
    .option("--join <token>", "enroll with the one-line join token printed by 'canopy device add'")
    .option("--device <id>", "this device's id (default: from the enrollment; for development)")
    .option("--hub <url>", "hub leafnode URL nats-leaf://HOST:PORT (repeatable for several hub nodes)", collect)
    .option("--data <dir>", "data directory (leaf store, agent state)")
    .version(canopyVersion(), "-V, --version", "print the agent's version")
    .option("--port <port>", "local client port of the leaf server (-1 = any free port; default 4223)")
    .option("--http-port <port>", "leaf monitoring port (off by default)")
    .option("--metrics-port <port>", "Prometheus /metrics on 127.0.0.1:PORT (0 = any free port; off by default)")
    .option("--heartbeat <duration>", "presence heartbeat interval", undefined)
    .option("--config <file>", "JSON config file (same fields as the flags, plus up.* and bridge.*)")
    .option("--log-level <level>", "trace|debug|info|warn|error")
    .option("--bridge-serial <path[:baud]>", "run the firmware bridge on this serial port or glob (repeatable)", collect)
    .option("--bridge-mqtt <host:port>", "run the firmware bridge with an MQTT listener here")
    .option("--mqtt-profiles <list>", "MQTT topic profiles to accept, comma-separated (default all: canopy,tasmota,esphome,shelly,custom)")
    .option("--bridge-mqtt-anonymous", "let MQTT clients without credentials in (development only; logged as a warning)")
    .option("--allow-exec <path>", "absolute path of a script the 'exec' command may run (repeatable; with the local exec.allow file)", collect)
    .option("--exec-allow-file <file>", "root-owned file listing the scripts 'exec' may run (default /etc/canopy/exec.allow); remote config exec.allow can only narrow it")
    .addHelpText(
      "after",
      "\nExamples:\n  canopy agent --bundle pi-01.bundle.json --data /var/lib/canopy   # first start: enroll\n  canopy agent --join canopy1.eyJ2Ijo... --data /var/lib/canopy\n  canopy agent --data /var/lib/canopy                              # later starts\n  canopy agent --config /etc/canopy/agent.json",
    )
    .action(async (f: Record<string, string | string[] | undefined>) => {
      const bundle = readBundleArg({ bundle: f.bundle as string | undefined, join: f.join as string | undefined });
      const options = loadAgentOptions(
        {
          device: f.device as string | undefined,
          hub: f.hub as string[] | undefined,
          data: f.data as string | undefined,
          port: f.port === undefined ? undefined : Number(f.port),
          httpPort: f.httpPort === undefined ? undefined : Number(f.httpPort),
          metricsPort: f.metricsPort === undefined ? undefined : Number(f.metricsPort),
          heartbeat: f.heartbeat as string | undefined,
          allowExec: f.allowExec as string[] | undefined,
          execAllowFile: f.execAllowFile as string | undefined,
          bridge:
            f.bridgeSerial || f.bridgeMqtt
              ? {
                  serial: (f.bridgeSerial as string[] | undefined) ?? [],
                  ...(f.bridgeMqtt
                    ? {
                        mqtt: {
                          listen: f.bridgeMqtt as string,
                          anonymous: Boolean(f.bridgeMqttAnonymous),
                          ...(f.mqttProfiles ? { profiles: String(f.mqttProfiles).split(",") as Array<"canopy"> } : {}),
                        },
                      }
                    : {}),
                }
              : undefined,
        },
        f.config as string | undefined,
        bundle,
      );
      const log = createLogger((f.logLevel as string | undefined) ?? undefined).child({ device: options.device });
      const ac = new AbortController();
      const onSignal = (sig: NodeJS.Signals): void => {
        log.info({ signal: sig }, "signal received");
        ac.abort();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      await runAgent(options, log, ac.signal, (leafUrl, metrics) => {
        process.stdout.write(JSON.stringify({ event: "agent-ready", device: options.device, leaf: leafUrl, pid: process.pid, ...(metrics ? { metrics } : {}) }) + "\n");
      });
    });
  registerSim(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    process.stderr.write(`error: ${errorMessage(err)}\n`);
    return err instanceof CanopyError && err.isUsage ? 2 : 1;
  }
}
