import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ServerSupervisor, fileStoreLimit, renderHubConfig, type HubClusterOptions, type ServerPorts } from "@canopy/protocol";
import type { Logger } from "../logging.js";

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
}

export interface HubServer {
  supervisor: ServerSupervisor;
  ports: ServerPorts;
  clientUrl: string;
  leafUrl: string;
  httpUrl: string;
  configFile: string;
}

/** Writes the hub's nats-server config under DATA and starts it supervised. */
export async function startHubServer(o: HubServerOptions, log: Logger): Promise<HubServer> {
  const data = resolve(o.data);
  const storeDir = join(data, "jetstream");
  await mkdir(storeDir, { recursive: true });
  const configFile = join(data, "hub.conf");
  const maxFileStore = await fileStoreLimit(data, o.maxFileStore);
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
    clientUrl: `nats://${host}:${ports.client}`,
    leafUrl: `nats-leaf://${o.advertise ?? `${host}:${ports.leaf}`}`,
    httpUrl: `http://${host}:${ports.http}`,
    configFile,
  };
}

/** nats-server's own log lines, at the level they carry. */
export function routeServerLog(log: Logger, line: string): void {
  const msg = line.replace(/^\[\d+\] \S+ \S+ /, "");
  if (line.includes("[ERR]") || line.includes("[FTL]")) log.error(msg);
  else if (line.includes("[WRN]")) log.warn(msg);
  else log.debug(msg);
}
