import { join } from "node:path";
import { createServer } from "node:net";
import { startHubServer, type HubServer } from "../hub/server.js";
import { initIdentity } from "../identity/init.js";
import { freePort } from "@canopy/protocol";
import type { Logger } from "../logging.js";

export interface DevHubs {
  servers: HubServer[];
  clientUrls: string[];
  leafUrls: string[];
  /** JetStream replicas for the demo's assets: 3 on a cluster of 3, else 1. */
  replicas: number;
}

/**
 * The demo's hub: one nats-server, or with `nodes` > 1 a cluster on loopback (node i under
 * DATA/hub-<i>, server names hub-1..hub-N, routes between them) like `canopy hub start --routes`.
 * Node 1 prefers the usual 4222/7422/8222 unless `freePorts`.
 */
export async function startDevHubs(data: string, nodes: number, freePorts: boolean, log: Logger): Promise<DevHubs> {
  if (nodes === 1) {
    const hub = await startHubServer(
      { data: join(data, "hub"), host: "127.0.0.1", port: await portOr(4222, freePorts), leafPort: await portOr(7422, freePorts), httpPort: await portOr(8222, freePorts), maxFileStore: 4 * 1024 ** 3 },
      log.child({ component: "hub" }),
    );
    return { servers: [hub], clientUrls: [hub.clientUrl], leafUrls: [hub.leafUrl], replicas: 1 };
  }
  // One identity for every node (as `canopy hub init --dir` + `hub start --identity`), made once
  // before the nodes start so they do not race to create it.
  const identityDir = join(data, "hub-identity");
  await initIdentity(identityDir, { tlsHosts: ["127.0.0.1"] });
  const clusterPorts = await Promise.all(Array.from({ length: nodes }, () => freeLoopbackPort()));
  const routes = clusterPorts.map((p) => `nats-route://127.0.0.1:${p}`);
  const servers = await Promise.all(
    clusterPorts.map(async (clusterPort, i) =>
      startHubServer(
        {
          data: join(data, `hub-${i + 1}`),
          host: "127.0.0.1",
          port: i === 0 ? await portOr(4222, freePorts) : -1,
          leafPort: i === 0 ? await portOr(7422, freePorts) : -1,
          httpPort: i === 0 ? await portOr(8222, freePorts) : -1,
          maxFileStore: 2 * 1024 ** 3,
          serverName: `hub-${i + 1}`,
          identityDir,
          cluster: { name: "canopy-dev", host: "127.0.0.1", port: clusterPort, routes: routes.filter((_, j) => j !== i) },
        },
        log.child({ component: `hub-${i + 1}` }),
      ),
    ),
  );
  return { servers, clientUrls: servers.map((s) => s.clientUrl), leafUrls: servers.map((s) => s.leafUrl), replicas: Math.min(3, nodes) };
}

/** The preferred port if it is free on loopback, else any free one. */
export async function portOr(preferred: number, free = false): Promise<number> {
  if (free) return -1;
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once("error", () => resolvePort(-1));
    srv.listen(preferred, "127.0.0.1", () => srv.close(() => resolvePort(preferred)));
  });
}

/** A loopback port for a server to bind next (below the ephemeral range: see `freePort`). */
export function freeLoopbackPort(): Promise<number> {
  return freePort("127.0.0.1");
}
