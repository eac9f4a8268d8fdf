import type { Command } from "commander";
import { CanopyError, ErrorCode, parseDuration } from "@canopy/protocol";
import { createLogger } from "../logging.js";

interface SimFlags {
  devices: string;
  server?: string;
  creds?: string;
  seed: string;
  groups: string;
  prefix: string;
  first: string;
  heartbeat: string;
  perConnection: string;
  presence: string;
  commands?: boolean;
  logLevel?: string;
}

function int(v: string, flag: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new CanopyError(ErrorCode.InvalidInput, `${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** `canopy sim fleet`: simulated agents for tests, demos and benchmarks. */
export function registerSim(program: Command): void {
  const sim = program.command("sim").description("simulators");
  sim
    .command("fleet")
    .description("run N simulated agents in this process, connected straight to the hub (no leaf servers)")
    .requiredOption("-n, --devices <n>", "number of simulated devices")
    .option("-s, --server <url>", "hub NATS URL (env CANOPY_SERVER)")
    .option("--creds <file>", "hub credentials, e.g. the hub's admin.creds (env CANOPY_CREDS)")
    .option("--seed <n>", "seed for the facts (same seed, same fleet)", "1")
    .option("-g, --groups <list>", "comma-separated groups the devices are spread over", "sim")
    .option("--prefix <p>", "device id prefix: ids are <prefix>-<index>", "sim")
    .option("--first <n>", "index of the first device (several simulators use disjoint ranges)", "0")
    .option("--heartbeat <duration>", "presence heartbeat (offline after 3 missed)", "15s")
    .option("--per-connection <n>", "devices sharing one NATS connection", "1")
    .option("--presence <mode>", "compact (full status on change, compact beats between, like agents) | full (full status every heartbeat: the pre-issue-15 load)", "compact")
    .option("--commands", "take commands: ping runs, other names are rejected (results reach KV commands through a hub shard)")
    .option("--log-level <level>", "trace|debug|info|warn|error")
    .addHelpText("after", "\nExamples:\n  canopy sim fleet --devices 1000 --server nats://127.0.0.1:4222 --creds hub/creds/admin.creds --seed 7 --groups lab,field\n  canopy sim fleet --devices 1000 --commands --groups sim   # then: canopy cmd send --group sim ping --wait")
    .action(async (f: SimFlags) => {
      const creds = f.creds ?? process.env.CANOPY_CREDS;
      if (f.presence !== "compact" && f.presence !== "full") {
        throw new CanopyError(ErrorCode.InvalidInput, `--presence must be compact or full, got ${JSON.stringify(f.presence)}`);
      }
      const presence: "compact" | "full" = f.presence;
      const groups = f.groups.split(",").map((g) => g.trim()).filter(Boolean);
      const options = {
        devices: int(f.devices, "--devices", 1, 100_000),
        server: f.server ?? process.env.CANOPY_SERVER ?? "nats://127.0.0.1:4222",
        seed: int(f.seed, "--seed", 0, 2 ** 31),
        groups,
        prefix: f.prefix,
        first: int(f.first, "--first", 0, 10_000_000),
        heartbeatMs: parseDuration(f.heartbeat, "--heartbeat"),
        perConnection: int(f.perConnection, "--per-connection", 1, 100_000),
        presence,
        commands: f.commands === true,
        ...(creds ? { creds } : {}),
      };
      const log = createLogger(f.logLevel ?? undefined, "sim").child({ component: "sim-fleet" });
      const ac = new AbortController();
      process.once("SIGINT", () => ac.abort());
      process.once("SIGTERM", () => ac.abort());
      // Loaded by this command only: `canopy agent` shares this CLI and never needs the simulator.
      const { startSimFleet } = await import("./fleet.js");
      const fleet = await startSimFleet(options, log);
      process.stdout.write(
        JSON.stringify({ event: "sim-ready", devices: fleet.devices.length, first: fleet.devices[0]?.id, last: fleet.devices.at(-1)?.id, pid: process.pid }) + "\n",
      );
      await new Promise<void>((resolve) => (ac.signal.aborted ? resolve() : ac.signal.addEventListener("abort", () => resolve(), { once: true })));
      await fleet.stop(true);
    });
}
