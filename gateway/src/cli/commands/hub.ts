import type { Command } from "commander";
import { access, constants } from "node:fs/promises";
import { CanopyError, ErrorCode, drainOrClose, errorMessage, parseBytes } from "@canopy/protocol";
import { connectHub } from "../../nats.js";
import { createLogger } from "../../logging.js";
import { startHubServer } from "../../hub/server.js";
import { provisionWhenReady } from "../../hub/provision.js";
import { defaultHubLimits, hubLimitsFromFlags, type HubLimitFlags } from "../../hub/limits.js";
import { addClusterOptions, clusterFromFlags, leafUrlList, replicasFor, type ClusterFlags } from "../../hub/cluster.js";
import { Gateway } from "../../service/gateway.js";
import { IdentityService } from "../../identity/service.js";
import { initIdentity } from "../../identity/init.js";
import { writeContext } from "../contexts/store.js";
import { collect, shutdownSignal } from "../context.js";
import { ConsoleServer, DEFAULT_CONSOLE_PORT } from "../../http/server.js";
import { printJson } from "../output.js";

interface HubStartOptions extends ClusterFlags, HubLimitFlags {
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
  consoleCert?: string;
  consoleKey?: string;
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
  const start = hub.command("start");
  addClusterOptions(start);
  start
    .description("run a hub nats-server (JetStream domain 'hub', operator-mode auth, TLS leaf port) supervised, provision its assets, and a gateway")
    .requiredOption("-d, --data <dir>", "data directory (server config, JetStream store, and the identity unless --identity)")
    .option("--host <addr>", "address to listen on", "0.0.0.0")
    .option("-p, --port <port>", "client port (-1 = any free port)", "4222")
    .option("--leaf-port <port>", "leafnode port devices dial (-1 = any free port)", "7422")
    .option("--http-port <port>", "monitoring port on loopback (-1 = any free port)", "8222")
    .option("--advertise <host:port>", "leafnode address to advertise to devices (behind a proxy or LB)")
    .option("--max-file-store <size>", "JetStream disk limit (capped below free disk)", "20GiB")
    .option("--up-max-bytes <size>", "max_bytes of each FLEET_UP_<n> shard (default: 10% of the JetStream store limit)")
    .option("--up-max-age <duration>", "max_age of each FLEET_UP_<n> shard (default: 90d)")
    .option("--cmd-max-bytes <size>", "max_bytes of the CMD stream (default: 5% of the store limit, at most 1GiB)")
    .option("--cmd-max-age <duration>", "max_age of the CMD stream, the longest command TTL (default: 30d)")
    .option("--identity <dir>", "identity directory made by 'canopy hub init' (default: DATA)")
    .option("--tls", "TLS on the client port as well (certificate from the hub's CA)")
    .option("--context-name <name>", "name of the context written for this hub", "hub")
    .option("--no-gateway", "do not run a gateway in this process (and so no console)")
    .option("--console-port <port>", "web console and /metrics port (0 or -1 = any free port)", String(DEFAULT_CONSOLE_PORT))
    .option("--console-listen <addr>", "address the console listens on (loopback unless told otherwise)", "127.0.0.1")
    .option("--no-console", "do not serve the web console and /metrics")
    .option("--console-cert <file>", "PEM certificate: serve the console over HTTPS (with --console-key; default with --tls: the hub's own)")
    .option("--console-key <file>", "PEM private key for --console-cert")
    .addHelpText(
      "after",
      "\nExamples:\n  canopy hub start --data /var/lib/canopy/hub\n  canopy hub start --data ./hub --port -1 --leaf-port -1 --http-port -1 --host 127.0.0.1\n" +
        "  canopy hub start --data /var/lib/canopy/hub --max-file-store 200GiB --up-max-bytes 20GiB --up-max-age 30d\n" +
        "  # node 1 of 3 (the same --routes on every node; streams and buckets get 3 replicas):\n" +
        "  canopy hub start --data /var/lib/canopy/hub --server-name hub1 --advertise hub1.example.net:7422 \\\n" +
        "    --cluster-name canopy --cluster-port 6222 --routes nats-route://hub1:6222,nats-route://hub2:6222,nats-route://hub3:6222",
    )
    .action(async (o: HubStartOptions) => {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(o.contextName)) {
        throw new CanopyError(ErrorCode.InvalidInput, `--context-name must match ^[A-Za-z0-9_.-]{1,64}$, got ${JSON.stringify(o.contextName)}`);
      }
      const consolePort = Number(o.consolePort);
      if (!Number.isInteger(consolePort) || consolePort < -1 || consolePort > 65535) {
        throw new CanopyError(ErrorCode.InvalidInput, `--console-port must be a port number (0 or -1 = any free port), got ${JSON.stringify(o.consolePort)}`);
      }
      if ((o.consoleCert === undefined) !== (o.consoleKey === undefined)) {
        throw new CanopyError(ErrorCode.InvalidInput, "give --console-cert and --console-key together");
      }
      const consoleTls = o.consoleCert && o.consoleKey ? { cert: o.consoleCert, key: o.consoleKey } : undefined;
      for (const f of consoleTls ? [consoleTls.cert, consoleTls.key] : []) {
        await access(f, constants.R_OK).catch(() => {
          throw new CanopyError(ErrorCode.InvalidInput, `cannot read ${f} (--console-cert / --console-key)`);
        });
      }
      // Checked before anything starts (exit 2 on a bad value); defaults follow the store limit in force.
      const requestedStore = parseBytes(o.maxFileStore, "--max-file-store");
      hubLimitsFromFlags(o, defaultHubLimits(requestedStore), requestedStore);
      const log = createLogger(undefined, "hub");
      const cluster = clusterFromFlags(o, o.host);
      const replicas = replicasFor(cluster);
      const leafUrls = o.leafUrls ? leafUrlList(o.leafUrls) : undefined;
      const server = await startHubServer(
        {
          data: o.data,
          host: o.host,
          port: Number(o.port),
          leafPort: Number(o.leafPort),
          httpPort: Number(o.httpPort),
          maxFileStore: requestedStore,
          ...(o.advertise ? { advertise: o.advertise } : {}),
          ...(o.identity ? { identityDir: o.identity } : {}),
          ...(o.tls ? { clientTls: true } : {}),
          ...(o.serverName ? { serverName: o.serverName } : {}),
          ...(cluster ? { cluster } : {}),
        },
        log,
      );
      // If this command fails from here on, the process exits (bin/canopy.js): take the server with it.
      const terminate = (): void => server.supervisor.terminate();
      process.once("exit", terminate);
      const { done, signal } = shutdownSignal();
      const id = server.identity;
      const target = { server: server.clientUrl, creds: id.adminCreds, ...(o.tls ? { ca: id.tls.caCert } : {}) };
      const nc = await connectHub(target, { name: "canopy-hub", daemon: true });
      let gateway: Gateway | undefined;
      let identity: IdentityService | undefined;
      let consoleServer: ConsoleServer | undefined;
      const streamLimits = hubLimitsFromFlags(o, defaultHubLimits(server.maxFileStore));
      if ((await provisionWhenReady(nc, replicas, log, signal, streamLimits)) && o.gateway) {
        gateway = new Gateway(nc, log.child({ component: "gateway" }));
        await gateway.start();
        identity = new IdentityService(nc, id, { hubUrl: server.clientUrl, leafUrls: leafUrls ?? [server.leafUrl] }, log.child({ component: "identity" }));
        await identity.start();
        if (o.console) {
          // A console that cannot listen (port taken) must not take the hub down with it.
          const clog = log.child({ component: "console" });
          // With --tls the console is HTTPS too, with the hub's certificate unless one is given.
          const tls = consoleTls ?? (o.tls ? { cert: id.tls.serverCert, key: id.tls.serverKey } : undefined);
          consoleServer = await ConsoleServer.start(nc, { data: o.data, host: o.consoleListen, port: Math.max(0, consolePort), tls }, clog).catch((err) => {
            clog.error({ err: errorMessage(err), port: consolePort }, "console not started");
            return undefined;
          });
        }
      }
      const context = await writeContext(o.contextName, target);
      process.stdout.write(
        JSON.stringify({
          event: "hub-ready", client: server.clientUrl, leaf: server.leafUrl, http: server.httpUrl, pid: server.supervisor.pid,
          creds: id.adminCreds, ca: id.tls.caCert, context,
          server: o.serverName ?? "hub", ...(cluster ? { cluster: cluster.name, replicas } : {}),
          ...(consoleServer ? { console: consoleServer.url } : {}),
        }) + "\n",
      );
      const sig = await done;
      server.supervisor.stopRestarting();
      log.info({ signal: sig }, "stopping hub");
      await consoleServer?.stop();
      identity?.stop();
      await gateway?.stop();
      await drainOrClose(nc);
      await server.supervisor.stop();
      process.off("exit", terminate);
    });
}
