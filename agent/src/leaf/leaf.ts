import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ServerSupervisor, fileStoreLimit, renderLeafConfig, type ServerPorts, type TlsFilesConfig } from "@canopy/protocol";
import type { Logger } from "../logging.js";

export interface LeafOptions {
  device: string;
  dataDir: string;
  hubUrls: string[];
  port: number;
  httpPort?: number;
  maxFileStore: number;
  credentialsFile?: string;
  tls?: TlsFilesConfig;
  syncInterval?: string;
  compression?: string;
}

/** Writes the device's leaf nats-server config and keeps that server running. */
export async function startLeaf(o: LeafOptions, log: Logger): Promise<{ supervisor: ServerSupervisor; ports: ServerPorts; maxFileStore: number }> {
  const storeDir = join(o.dataDir, "leaf");
  await mkdir(storeDir, { recursive: true });
  const configFile = join(o.dataDir, "leaf.conf");
  const maxFileStore = await fileStoreLimit(o.dataDir, o.maxFileStore, 0.8, await dirBytes(storeDir));
  const render = (port: number, httpPort: number | undefined): string =>
    renderLeafConfig({
      device: o.device,
      storeDir,
      port,
      hubUrls: o.hubUrls,
      maxFileStore,
      ...(o.syncInterval ? { syncInterval: o.syncInterval } : {}),
      ...(o.compression ? { compression: o.compression } : {}),
      ...(httpPort === undefined ? {} : { httpPort }),
      ...(o.credentialsFile ? { credentialsFile: o.credentialsFile } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
    });
  await writeFile(configFile, render(o.port, o.httpPort));
  const slog = log.child({ component: "leaf" });
  const supervisor = new ServerSupervisor({ configFile, onLog: (line) => routeLeafLog(slog, line) }, (e) => {
    if (e.kind === "started") slog.info({ pid: e.pid, ports: e.ports }, "leaf nats-server running");
    else if (e.kind === "exited") slog.warn({ code: e.code }, "leaf nats-server exited; restarting");
    else slog.error({ err: e.error.message, retryInMs: e.retryInMs }, "leaf nats-server restart failed");
  });
  const ports = await supervisor.start();
  if (o.port === -1 || o.httpPort === -1) {
    // Pin the ports the server picked: after a supervised restart, clients reconnect to the same one.
    await writeFile(configFile, render(ports.client ?? o.port, o.httpPort === undefined ? undefined : (ports.http ?? o.httpPort)));
  }
  return { supervisor, ports, maxFileStore };
}

/**
 * The leaf retries an unreachable hub every few seconds and logs an error each time; those lines go
 * to debug so a device off the network does not flood its log (the agent's hub link logs once per
 * backoff step instead).
 */
function routeLeafLog(log: Logger, line: string): void {
  const msg = line.replace(/^\[\d+\] \S+ \S+ /, "");
  if (/leafnode|Leafnode/.test(msg) && /\[ERR\]/.test(line)) log.debug(msg);
  else if (line.includes("[ERR]") || line.includes("[FTL]")) log.error(msg);
  else if (line.includes("[WRN]")) log.warn(msg);
  else log.debug(msg);
}

/** Bytes under a directory (the leaf's store), 0 when it does not exist. */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!e.isFile()) continue;
    total += await stat(join(e.parentPath, e.name)).then((s) => s.size, () => 0);
  }
  return total;
}
