import type { Command } from "commander";
import { drainOrClose, parseBytes } from "@canopy/protocol";
import { connectHub } from "../../nats.js";
import { createLogger } from "../../logging.js";
import { startHubServer } from "../../hub/server.js";
import { provisionWhenReady } from "../../hub/provision.js";
import { addClusterOptions, clusterFromFlags, replicasFor, type ClusterFlags } from "../../hub/cluster.js";
import { Gateway } from "../../service/gateway.js";
import { shutdownSignal } from "../context.js";

interface HubStartOptions extends ClusterFlags {
  data: string;
  host: string;
  port: string;
  leafPort: string;
  httpPort: string;
  advertise?: string;
  maxFileStore: string;
  gateway: boolean;
}

export function registerHub(program: Command): void {
  const hub = program.command("hub").description("run the cloud side: NATS hub + gateway");
  const start = hub.command("start");
  addClusterOptions(start);
  start
    .description("run a hub nats-server (JetStream domain 'hub') supervised, provision its assets, and a gateway")
    .requiredOption("-d, --data <dir>", "data directory (server config and JetStream store)")
    .option("--host <addr>", "address to listen on", "0.0.0.0")
    .option("-p, --port <port>", "client port (-1 = any free port)", "4222")
    .option("--leaf-port <port>", "leafnode port devices dial (-1 = any free port)", "7422")
    .option("--http-port <port>", "monitoring port (-1 = any free port)", "8222")
    .option("--advertise <host:port>", "leafnode address to advertise to devices (behind a proxy or LB)")
    .option("--max-file-store <size>", "JetStream disk limit (capped below free disk)", "20GiB")
    .option("--no-gateway", "do not run a gateway in this process")
    .addHelpText(
      "after",
      "\nExamples:\n  canopy hub start --data /var/lib/canopy/hub\n  canopy hub start --data ./hub --port -1 --leaf-port -1 --http-port -1 --host 127.0.0.1\n" +
        "  # node 1 of 3 (the same --routes on every node; streams and buckets get 3 replicas):\n" +
        "  canopy hub start --data /var/lib/canopy/hub --server-name hub1 --advertise hub1.example.net:7422 \\\n" +
        "    --cluster-name canopy --cluster-port 6222 --routes nats-route://hub1:6222,nats-route://hub2:6222,nats-route://hub3:6222",
    )
    .action(async (o: HubStartOptions) => {
      const log = createLogger(undefined, "hub");
      const cluster = clusterFromFlags(o, o.host);
      const replicas = replicasFor(cluster);
      const server = await startHubServer(
        {
          data: o.data,
          host: o.host,
          port: Number(o.port),
          leafPort: Number(o.leafPort),
          httpPort: Number(o.httpPort),
          maxFileStore: parseBytes(o.maxFileStore, "--max-file-store"),
          ...(o.advertise ? { advertise: o.advertise } : {}),
          ...(o.serverName ? { serverName: o.serverName } : {}),
          ...(cluster ? { cluster } : {}),
        },
        log,
      );
      const { done, signal } = shutdownSignal();
      const nc = await connectHub(server.clientUrl, { name: "canopy-hub", daemon: true });
      let gateway: Gateway | undefined;
      if (await provisionWhenReady(nc, replicas, log, signal)) {
        if (o.gateway) {
          gateway = new Gateway(nc, log.child({ component: "gateway" }));
          await gateway.start();
        }
      }
      process.stdout.write(
        JSON.stringify({
          event: "hub-ready", client: server.clientUrl, leaf: server.leafUrl, http: server.httpUrl, pid: server.supervisor.pid,
          server: o.serverName ?? "hub", ...(cluster ? { cluster: cluster.name, replicas } : {}),
        }) + "\n",
      );
      const sig = await done;
      server.supervisor.stopRestarting();
      log.info({ signal: sig }, "stopping hub");
      await gateway?.stop();
      await drainOrClose(nc);
      await server.supervisor.stop();
    });
}
