import type { Command } from "commander";
import { drainOrClose } from "@canopy/protocol";
import { connectHub } from "../../nats.js";
import { createLogger } from "../../logging.js";
import { Gateway } from "../../service/gateway.js";
import { globals, shutdownSignal } from "../context.js";

export function registerGateway(program: Command): void {
  program
    .command("gateway")
    .description("run the hub-side services (several instances may run; leases keep singleton work single)")
    .addHelpText("after", "\nExamples:\n  canopy gateway --server nats://hub.internal:4222")
    .action(async (_o: unknown, cmd: Command) => {
      const log = createLogger(undefined, "gateway");
      const { server } = await globals(cmd);
      const { done } = shutdownSignal();
      const nc = await connectHub(server, { name: "canopy-gateway", daemon: true });
      const gw = new Gateway(nc, log);
      await gw.start();
      const sig = await done;
      log.info({ signal: sig }, "stopping gateway");
      await gw.stop();
      await drainOrClose(nc);
    });
}
