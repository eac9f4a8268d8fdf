import { createInterface } from "node:readline";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { CanopyError, MQTT_PROFILES, canopyVersion, checkId, errorMessage, hashSecret } from "@canopy/protocol";
import type { ProfileName } from "./mqtt/profiles/types.js";
import { loadUsersFile } from "./mqtt/auth.js";
import { parseHostPort } from "./mqtt/listener.js";
import { mainBridge } from "./main.js";
import { nodeSerialIo } from "./serial/io.js";
import { parsePortSpec } from "./serial/ports.js";
import { LOG_LEVELS } from "./log.js";
import { MqttSim } from "./sim/mqtt-sim.js";
import { SerialSim } from "./sim/serial-sim.js";

const BRIDGE_EXAMPLES = `
Examples:
  canopy bridge --device pi-17 --leaf nats://127.0.0.1:4223 --serial '/dev/ttyACM*' --serial /dev/ttyUSB0:921600
  canopy bridge --device pi-17 --leaf nats://127.0.0.1:4223 --mqtt 0.0.0.0:1883      # MCUs need creds: canopy mcu creds
  canopy bridge --device pi-17 --leaf nats://127.0.0.1:4223 --mqtt 0.0.0.0:1883 --mqtt-users /etc/canopy/mqtt-users
  echo -n 's3cret' | canopy bridge hash-password     # prints a scrypt hash for the users file

Serial ports take PATH[:BAUD][:text|binary] (default mode auto-detects). Globs in the last path segment
are rescanned, so boards plugged in later are picked up. See firmware-bridge/PROTOCOL.md.`;

const SIM_EXAMPLES = `
Examples:
  socat pty,raw,echo=0,link=/tmp/mcu-a pty,raw,echo=0,link=/tmp/mcu-b &
  canopy sim mcu --id m1 --serial /tmp/mcu-b --binary --rate 10
  canopy sim mcu --id m2 --mqtt 127.0.0.1:1883 --rate 1 --mqtt-version 5

A binary-mode sim carries the Canopy serial bootloader (PROTOCOL.md part 4): it takes a flash, boots the
new image on trial and confirms it; an image containing the bytes CANOPY-NEVER-CONFIRM never confirms,
so the bootloader reverts to the previous version.`;

function int(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
}

function num(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number ≥ 0");
  return n;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function profileList(v: string): ProfileName[] {
  const names = v.split(",").map((s) => s.trim());
  const bad = names.filter((n) => !(MQTT_PROFILES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) throw new InvalidArgumentError(`unknown profile ${bad.join(",")}; choose from ${MQTT_PROFILES.join(",")}`);
  return names as ProfileName[];
}

function bridgeCommand(run: (code: Promise<number>) => void): Command {
  return new Command("bridge")
    .description("run the firmware bridge: MCUs on serial ports and MQTT into the device's UP stream")
    .version(canopyVersion(), "-V, --version", "print the bridge's version")
    .requiredOption("--device <id>", "device id (the leaf's JetStream domain)")
    .requiredOption("--leaf <url>", "leaf nats-server URL, e.g. nats://127.0.0.1:4223")
    .option("--serial <path[:baud][:mode]>", "serial port or glob; repeatable", collect, [])
    .option("--baud <n>", "default baud rate", int("--baud", 50, 16_000_000), 115200)
    .option("--mqtt <host:port>", "listen for MQTT clients (3.1.1 and 5.0)")
    .option("--mqtt-users <file>", "user:scrypt-hash lines accepted for any client id (per-MCU creds: canopy mcu creds)")
    .option("--mqtt-anonymous", "let clients without credentials in (development only; logged as a warning)", false)
    .option("--mqtt-profiles <list>", "topic profiles to accept, comma-separated (default all: canopy,tasmota,esphome,shelly,custom)", profileList)
    .option("--max-mcus <n>", "MCUs remembered; beyond it the one offline longest is forgotten", int("--max-mcus", 1, 4096), 128)
    .option("--max-packet-bytes <n>", "largest MQTT packet", int("--max-packet-bytes", 1024, 64 * 2 ** 20), 64 * 1024)
    .option("--max-frame-bytes <n>", "largest serial frame or line", int("--max-frame-bytes", 64, 65536), 1024)
    .option("--rescan-ms <n>", "glob rescan interval", int("--rescan-ms", 50, 3_600_000), 1000)
    .option("--data <dir>", "LMDB directory for the registry and sequence", ".canopy/bridge")
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS as string[]).default("info"))
    .addHelpText("after", BRIDGE_EXAMPLES)
    .action((o: Record<string, unknown>) => {
      const serial = o["serial"] as string[];
      for (const s of serial) parsePortSpec(s, o["baud"] as number);
      const mqttListen = o["mqtt"] as string | undefined;
      if (mqttListen) parseHostPort(mqttListen);
      const usersFile = o["mqttUsers"] as string | undefined;
      run(
        mainBridge(
          {
            device: checkId(o["device"], "device id"),
            leaf: o["leaf"] as string,
            dataDir: o["data"] as string,
            config: {
              serial,
              baudRate: o["baud"] as number,
              rescanMs: o["rescanMs"] as number,
              maxFrameBytes: o["maxFrameBytes"] as number,
              maxMcus: o["maxMcus"] as number,
              ...(mqttListen
                ? {
                    mqtt: {
                      listen: mqttListen,
                      users: usersFile ? loadUsersFile(usersFile) : {},
                      anonymous: o["mqttAnonymous"] === true,
                      ...(o["mqttProfiles"] ? { profiles: o["mqttProfiles"] as ProfileName[] } : {}),
                      maxPacketBytes: o["maxPacketBytes"] as number,
                    },
                  }
                : {}),
            },
          },
          o["logLevel"] as string,
        ),
      );
    });
}

function simCommand(run: (code: Promise<number>) => void): Command {
  const sim = new Command("sim").description("simulators");
  sim
    .command("mcu")
    .description("a simulated microcontroller on a serial port (text or binary protocol) or over MQTT")
    .requiredOption("--id <mcu>", "MCU id (also the MQTT client id)")
    .option("--serial <path[:baud]>", "serial port (e.g. one end of a socat pty pair)")
    .option("--binary", "speak the binary COBS protocol instead of text lines", false)
    .option("--mqtt <host:port>", "connect to the bridge's MQTT listener")
    .addOption(new Option("--mqtt-version <v>", "MQTT protocol version").choices(["4", "5"]).default("4"))
    .option("--username <u>", "MQTT user name")
    .option("--password <p>", "MQTT password")
    .option("--rate <hz>", "readings per second (0 = as fast as acks allow)", num, 1)
    .option("--count <n>", "stop after n readings were acknowledged", int("--count", 1, 1e9))
    .option("--window <n>", "unacknowledged frames / QoS 1 publishes in flight", int("--window", 1, 1024), 32)
    .option("--board <name>", "board name", undefined)
    .option("--firmware <version>", "firmware version", undefined)
    .option("--corrupt <fraction>", "binary serial: corrupt this fraction of frames on the wire, both ways (e.g. 0.01)", num, 0)
    .option("--boot-write-ms <ms>", "binary serial: the bootloader's time to program one WRITE", num, 0)
    .addHelpText("after", SIM_EXAMPLES)
    .action((o: Record<string, unknown>) => {
      const id = checkId(o["id"], "mcu id");
      const serial = o["serial"] as string | undefined;
      const mqttAddr = o["mqtt"] as string | undefined;
      if ((serial === undefined) === (mqttAddr === undefined)) {
        throw new CanopyError("INVALID_INPUT", "give exactly one of --serial PATH or --mqtt HOST:PORT");
      }
      const common = {
        id,
        rate: o["rate"] as number,
        ...(o["count"] !== undefined ? { count: o["count"] as number } : {}),
        window: o["window"] as number,
        ...(o["board"] ? { board: o["board"] as string } : {}),
        ...(o["firmware"] ? { firmware: o["firmware"] as string } : {}),
        report: (rec: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ mcu: id, ...rec })}\n`),
      };
      const ctl = new AbortController();
      const stop = (): void => ctl.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      if (serial !== undefined) {
        const spec = parsePortSpec(serial, 115200);
        const sim = new SerialSim({ ...common, path: spec.path, baudRate: spec.baudRate, binary: o["binary"] === true, io: nodeSerialIo, corrupt: o["corrupt"] as number, bootWriteMs: o["bootWriteMs"] as number });
        run(sim.run(ctl.signal).then(() => 0));
      } else {
        const { host, port } = parseHostPort(mqttAddr as string);
        const sim = new MqttSim({
          ...common,
          host: host === "0.0.0.0" ? "127.0.0.1" : host,
          port,
          version: o["mqttVersion"] === "5" ? 5 : 4,
          ...(o["username"] !== undefined ? { username: o["username"] as string } : {}),
          ...(o["password"] !== undefined ? { password: o["password"] as string } : {}),
        });
        run(sim.run(ctl.signal).then(() => 0));
      }
    });
  return sim;
}

async function readStdin(): Promise<string> {
  const lines: string[] = [];
  for await (const line of createInterface({ input: process.stdin })) lines.push(line);
  return lines.join("\n");
}

/** `canopy bridge …` and `canopy sim mcu …`; argv starts with "bridge" or "sim". Exit 0 / 1 / 2. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "bridge" && argv[1] === "hash-password") {
    const pw = await readStdin();
    if (!pw) {
      process.stderr.write("canopy bridge hash-password: give the password on stdin\n");
      return 2;
    }
    process.stdout.write(`${await hashSecret(pw)}\n`);
    return 0;
  }
  let pending: Promise<number> | undefined;
  const run = (p: Promise<number>): void => {
    pending = p;
  };
  const program = new Command("canopy").exitOverride().showHelpAfterError(false);
  program.addCommand(bridgeCommand(run)).addCommand(simCommand(run));
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) c.exitOverride();
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    process.stderr.write(`canopy ${argv[0] ?? ""}: ${errorMessage(err)}\n`);
    return err instanceof CanopyError && !err.isUsage ? 1 : 2;
  }
  if (!pending) return 0;
  try {
    return await pending;
  } catch (err) {
    process.stderr.write(`canopy ${argv[0] ?? ""}: ${errorMessage(err)}\n`);
    return err instanceof CanopyError && err.isUsage ? 2 : 1;
  }
}
