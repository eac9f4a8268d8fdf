import type { Command } from "commander";
import { CanopyError, ErrorCode, drainOrClose, errorMessage, parseBytes } from "@canopy/protocol";
import { connectHub } from "../../nats.js";
import { createLogger } from "../../logging.js";
import { startHubServer } from "../../hub/server.js";
import { provisionHub } from "../../hub/provision.js";
import { Gateway } from "../../service/gateway.js";
import { IdentityService } from "../../identity/service.js";
import { initIdentity } from "../../identity/init.js";
import { writeContext } from "../../contexts.js";
import { collect, shutdownSignal } from "../context.js";
import { printJson } from "../output.js";
import { ConsoleServer, DEFAULT_CONSOLE_PORT } from "../../http/server.js";

interface HubStartOptions {
  data: string;
  host: string;
  port: string;
  leafPort: string;
  httpPort: string;
  advertise?: string;
  maxFileStore: string;
  gateway: boolean;
  identity?: string;
  tls?: boolean;
  contextName: string;
  consolePort: string;
  consoleListen: string;
  console: boolean;
}

export function registerHub(program: Command): void {
  const hub = program.command("hub").description("run the cloud side: NATS hub + gateway");
  hub
    .command("init")
    .description("make the hub's identity (operator, accounts, admin creds, leaf-link CA) if it does not exist yet")
    .requiredOption("--dir <dir>", "identity directory (keys 0600; share it between the nodes of a hub)")
    .option("--tls-host <host>", "extra host name or IP in the hub's TLS certificate (repeatable)", collect, [])
    .option("--json", "print the paths as JSON")
    .addHelpText("after", "\nExamples:\n  canopy hub init --dir /etc/canopy/hub-identity --tls-host hub.example.net")
    .action(async (o: { dir: string; tlsHost: string[]; json?: boolean }) => {
      const id = await initIdentity(o.dir, { tlsHosts: o.tlsHost });
      const out = { dir: id.dir, operator: id.operator.pub, account: id.account.pub, adminCreds: id.adminCreds, ca: id.tls.caCert };
      if (o.json) printJson(out);
      else process.stdout.write(`identity in ${id.dir}\n  admin credentials ${id.adminCreds}\n  leaf-link CA      ${id.tls.caCert}\n`);
    });
  hub
    .command("start")
    .description("run a hub nats-server (JetStream domain 'hub', operator-mode auth, TLS leaf port) supervised, provision its assets, and a gateway")
    .requiredOption("-d, --data <dir>", "data directory (server config, JetStream store, and the identity unless --identity)")
    .option("--host <addr>", "address to listen on", "0.0.0.0")
    .option("-p, --port <port>", "client port (-1 = any free port)", "4222")
    .option("--leaf-port <port>", "leafnode port devices dial (-1 = any free port)", "7422")
    .option("--http-port <port>", "monitoring port on loopback (-1 = any free port)", "8222")
    .option("--advertise <host:port>", "leafnode address to advertise to devices (behind a proxy or LB)")
    .option("--max-file-store <size>", "JetStream disk limit (capped below free disk)", "20GiB")
    .option("--identity <dir>", "identity directory made by 'canopy hub init' (default: DATA)")
    .option("--tls", "TLS on the client port as well (certificate from the hub's CA)")
    .option("--context-name <name>", "name of the context written for this hub", "hub")
    .option("--no-gateway", "do not run a gateway in this process (and so no console)")
    .option("--console-port <port>", "web console and /metrics port (0 or -1 = any free port)", String(DEFAULT_CONSOLE_PORT))
    .option("--console-listen <addr>", "address the console listens on (loopback unless told otherwise)", "127.0.0.1")
    .option("--no-console", "do not serve the web console and /metrics")
    .addHelpText(
      "after",
      "\nExamples:\n  canopy hub start --data /var/lib/canopy/hub\n  canopy hub start --data ./hub --port -1 --leaf-port -1 --http-port -1 --host 127.0.0.1",
    )
    .action(async (o: HubStartOptions) => {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(o.contextName)) {
        throw new CanopyError(ErrorCode.InvalidInput, `--context-name must match ^[A-Za-z0-9_.-]{1,64}$, got ${JSON.stringify(o.contextName)}`);
      }
      const consolePort = Number(o.consolePort);
      if (!Number.isInteger(consolePort) || consolePort < -1 || consolePort > 65535) {
        throw new CanopyError(ErrorCode.InvalidInput, `--console-port must be a port number (0 or -1 = any free port), got ${JSON.stringify(o.consolePort)}`);
      }
      const log = createLogger(undefined, "hub");
      const server = await startHubServer(
        {
          data: o.data,
          host: o.host,
          port: Number(o.port),
          leafPort: Number(o.leafPort),
          httpPort: Number(o.httpPort),
          maxFileStore: parseBytes(o.maxFileStore, "--max-file-store"),
          ...(o.advertise ? { advertise: o.advertise } : {}),
          ...(o.identity ? { identityDir: o.identity } : {}),
          ...(o.tls ? { clientTls: true } : {}),
        },
        log,
      );
      const { done } = shutdownSignal();
      const id = server.identity;
      const target = { server: server.clientUrl, creds: id.adminCreds, ...(o.tls ? { ca: id.tls.caCert } : {}) };
      const nc = await connectHub(target, { name: "canopy-hub", daemon: true });
      let gateway: Gateway | undefined;
      let identity: IdentityService | undefined;
      let consoleServer: ConsoleServer | undefined;
      if (o.gateway) {
        gateway = new Gateway(nc, log.child({ component: "gateway" }));
        await gateway.start();
        identity = new IdentityService(nc, id, { hubUrl: server.clientUrl, leafUrls: [server.leafUrl] }, log.child({ component: "identity" }));
        await identity.start();
        if (o.console) {
          // A console that cannot listen (port taken) must not take the hub down with it.
          const clog = log.child({ component: "console" });
          consoleServer = await ConsoleServer.start(nc, { data: o.data, host: o.consoleListen, port: Math.max(0, consolePort) }, clog).catch((err) => {
            clog.error({ err: errorMessage(err), port: consolePort }, "console not started");
            return undefined;
          });
        }
      } else {
        await provisionHub(nc);
      }
      const context = await writeContext(o.contextName, target);
      process.stdout.write(
        JSON.stringify({
          event: "hub-ready", client: server.clientUrl, leaf: server.leafUrl, http: server.httpUrl, pid: server.supervisor.pid,
          creds: id.adminCreds, ca: id.tls.caCert, context,
          ...(consoleServer ? { console: consoleServer.url } : {}),
        }) + "\n",
      );
      const sig = await done;
      server.supervisor.stopRestarting();
      log.info({ signal: sig }, "stopping hub");
      identity?.stop();
      await consoleServer?.stop();
      await gateway?.stop();
      await drainOrClose(nc);
      await server.supervisor.stop();
    });
}
