import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ServerSupervisor, fileStoreLimit, renderHubConfig, type HubClusterOptions, type ServerPorts } from "@canopy/protocol";
import type { Logger } from "../logging.js";
import { initIdentity, type Identity } from "../identity/init.js";

export interface HubServerOptions {
  data: string;
  host: string;
  port: number;
  leafPort: number;
  httpPort: number;
  advertise?: string;
  maxFileStore: number;
  /** Unique per cluster node. */
  serverName?: string;
  cluster?: HubClusterOptions;
  /** Where the identity (keys, creds, CA) lives; default DATA. Made on first start. */
  identityDir?: string;
  /** TLS on the client port as well (the leaf port always has it). */
  clientTls?: boolean;
}

export interface HubServer {
  supervisor: ServerSupervisor;
  ports: ServerPorts;
  clientUrl: string;
  leafUrl: string;
  httpUrl: string;
  configFile: string;
  identity: Identity;
  /** The JetStream store limit in force: --max-file-store, capped below the free disk. */
  maxFileStore: number;
}

/** Writes the hub's nats-server config under DATA and starts it supervised. */
export async function startHubServer(o: HubServerOptions, log: Logger): Promise<HubServer> {
  const data = resolve(o.data);
  const storeDir = join(data, "jetstream");
  await mkdir(storeDir, { recursive: true });
  const configFile = join(data, "hub.conf");
  const maxFileStore = await fileStoreLimit(data, o.maxFileStore);
  const tlsHosts = [o.host, ...(o.advertise ? [o.advertise.replace(/:\d+$/, "").replace(/^\[|\]$/g, "")] : [])].filter((h) => h !== "0.0.0.0");
  const identity = await initIdentity(o.identityDir ?? data, { tlsHosts });
  const tlsFiles = { certFile: identity.tls.serverCert, keyFile: identity.tls.serverKey, caFile: identity.tls.caCert };
  const cfg = {
    storeDir,
    host: o.host,
    port: o.port,
    leafPort: o.leafPort,
    httpPort: o.httpPort,
    maxFileStore,
    ...(o.advertise ? { advertise: o.advertise } : {}),
    ...(o.serverName ? { serverName: o.serverName } : {}),
    ...(o.cluster ? { cluster: o.cluster } : {}),
    auth: {
      operatorJwt: identity.operator.jwt,
      systemAccount: identity.sys.pub,
      resolverDir: join(data, "jwt"),
      preload: { [identity.sys.pub]: identity.sys.jwt, [identity.account.pub]: identity.account.jwt },
    },
    leafTls: tlsFiles,
    ...(o.clientTls ? { clientTls: tlsFiles } : {}),
  };
  await writeFile(configFile, renderHubConfig(cfg));
  const slog = log.child({ component: "nats-server" });
  const supervisor = new ServerSupervisor(
    { configFile, onLog: (line) => routeServerLog(slog, line) },
    (e) => {
      if (e.kind === "started") slog.info({ pid: e.pid, ports: e.ports }, "hub nats-server running");
      else if (e.kind === "exited") slog.warn({ code: e.code }, "hub nats-server exited; restarting");
      else slog.error({ err: e.error.message, retryInMs: e.retryInMs }, "hub nats-server restart failed");
    },
  );
  const ports = await supervisor.start();
  const host = o.host === "0.0.0.0" ? "127.0.0.1" : o.host;
  return {
    supervisor,
    ports,
    clientUrl: `${o.clientTls ? "tls" : "nats"}://${host}:${ports.client}`,
    leafUrl: `nats-leaf://${o.advertise ?? `${host}:${ports.leaf}`}`,
    httpUrl: `http://${host}:${ports.http}`,
    configFile,
    identity,
    maxFileStore,
  };
}

/** nats-server's own log lines, at the level they carry. */
export function routeServerLog(log: Logger, line: string): void {
  const msg = line.replace(/^\[\d+\] \S+ \S+ /, "");
  if (line.includes("[ERR]") || line.includes("[FTL]")) log.error(msg);
  else if (line.includes("[WRN]")) log.warn(msg);
  else log.debug(msg);
}
