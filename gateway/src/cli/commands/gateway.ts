import type { Command } from "commander";
import { CanopyError, ErrorCode, drainOrClose } from "@canopy/protocol";
import { connectHub } from "../../nats.js";
import { createLogger } from "../../logging.js";
import { Gateway } from "../../service/gateway.js";
import { collect, globals, shutdownSignal } from "../context.js";
import { initIdentity } from "../../identity/init.js";
import { IdentityService } from "../../identity/service.js";

export function registerGateway(program: Command): void {
  program
    .command("gateway")
    .description("run the hub-side services (several instances may run; leases keep singleton work single)")
    .option("--identity <dir>", "hub identity directory ('canopy hub init'): this gateway then mints and revokes device credentials")
    .option("--leaf-url <url>", "leafnode URL devices dial, put in enrollment bundles (repeatable: every hub node)", collect, [])
    .addHelpText("after", "\nExamples:\n  canopy gateway --server nats://hub.internal:4222 --creds admin.creds\n  canopy gateway --identity /etc/canopy/hub-identity --leaf-url nats-leaf://hub.example.net:7422")
    .action(async (o: { identity?: string; leafUrl: string[] }, cmd: Command) => {
      const log = createLogger(undefined, "gateway");
      const { target } = await globals(cmd);
      const { done } = shutdownSignal();
      const nc = await connectHub(target, { name: "canopy-gateway", daemon: true });
      const gw = new Gateway(nc, log);
      await gw.start();
      let identity: IdentityService | undefined;
      if (o.identity) {
        if (o.leafUrl.length === 0) throw new CanopyError(ErrorCode.InvalidInput, "--identity needs --leaf-url (what enrollment bundles tell devices to dial)");
        identity = new IdentityService(nc, await initIdentity(o.identity), { hubUrl: target.server, leafUrls: o.leafUrl }, log.child({ component: "identity" }));
        await identity.start();
      }
      const sig = await done;
      log.info({ signal: sig }, "stopping gateway");
      identity?.stop();
      await gw.stop();
      await drainOrClose(nc);
    });
}
