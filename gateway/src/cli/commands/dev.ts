import type { Command } from "commander";
import { CanopyError, ErrorCode } from "@canopy/protocol";
import { createLogger } from "../../logging.js";
import { devUp } from "../../dev/up.js";
import { shutdownSignal } from "../context.js";

export function registerDev(program: Command): void {
  const dev = program.command("dev").description("local development and demo");
  dev
    .command("up")
    .description("run a local hub + N enrolled devices (agent + leaf nats-server each) on loopback")
    .option("-n, --devices <n>", "number of demo devices", "3")
    .option("-d, --data <dir>", "data directory", "./.canopy")
    .option("-v, --verbose", "print every child log line")
    .option("--free-ports", "use any free ports instead of 4222/7422/8222")
    .option("--hub-nodes <n>", "1 hub nats-server, or 3: a hub cluster on loopback (replicas 3)", "1")
    .addHelpText("after", "\nExamples:\n  canopy dev up\n  canopy dev up --devices 5 --data /tmp/canopy-demo\n  canopy dev up --hub-nodes 3")
    .action(async (o: { devices: string; data: string; verbose?: boolean; freePorts?: boolean; hubNodes: string }) => {
      const n = Number(o.devices);
      if (!Number.isInteger(n) || n < 1 || n > 50) {
        throw new CanopyError(ErrorCode.InvalidInput, `--devices must be an integer from 1 to 50, got ${o.devices}`);
      }
      const hubNodes = Number(o.hubNodes);
      if (hubNodes !== 1 && hubNodes !== 3) throw new CanopyError(ErrorCode.InvalidInput, `--hub-nodes must be 1 or 3, got ${o.hubNodes}`);
      const { signal } = shutdownSignal();
      await devUp({
        devices: n,
        hubNodes,
        data: o.data,
        bin: process.argv[1] ?? "canopy",
        signal,
        log: createLogger(process.env.CANOPY_LOG_LEVEL ?? "warn", "dev"),
        verbose: o.verbose === true,
        freePorts: o.freePorts === true,
      });
    });
}
