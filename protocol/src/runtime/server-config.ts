import { statfs } from "node:fs/promises";
import { checkId } from "../ids.js";
import { HUB_DOMAIN } from "../subjects.js";

/**
 * nats-server configs for the hub and for a device leaf. Facts behind them (DESIGN.md, 2.9.10):
 * every leaf needs its own JetStream domain and server_name; all leaves share `cluster { name: edge }`
 * so interest does not flow leaf to leaf; the hub must advertise the leafnode address devices should
 * dial; a full disk wedges JetStream, so max_file_store always sits below the free space.
 */
export interface HubConfigOptions {
  storeDir: string;
  host: string;
  port: number;
  leafPort: number;
  httpPort: number;
  /** host:port devices should dial; default host:leafPort. */
  advertise?: string;
  maxFileStore: number;
  serverName?: string;
  /** A node of a hub cluster (JetStream clustered: every node has its own server_name). */
  cluster?: HubClusterOptions;
}

export interface HubClusterOptions {
  name: string;
  host: string;
  port: number;
  /** nats-route://HOST:PORT of the other nodes (a node's own route is dropped before this). */
  routes: string[];
  /** host:port the other nodes should dial for this node's routes (behind NAT). */
  advertise?: string;
}

export function renderHubConfig(o: HubConfigOptions): string {
  const advertise = o.advertise ?? `${o.host === "0.0.0.0" ? "127.0.0.1" : o.host}:${o.leafPort}`;
  const lines = [
    `server_name: ${q(o.serverName ?? "hub")}`,
    `listen: ${q(`${o.host}:${o.port}`)}`,
    o.httpPort >= 0 || o.httpPort === -1 ? `http: ${q(`${o.host}:${o.httpPort}`)}` : "",
    `max_payload: 8MB`,
    `jetstream {`,
    `  store_dir: ${q(o.storeDir)}`,
    `  domain: ${HUB_DOMAIN}`,
    `  max_file_store: ${o.maxFileStore}`,
    `  max_memory_store: 268435456`,
    `}`,
    `leafnodes {`,
    `  listen: ${q(`${o.host}:${o.leafPort}`)}`,
    o.leafPort === -1 ? "" : `  advertise: ${q(advertise)}`,
    `}`,
    ...(o.cluster ? renderCluster(o.cluster) : []),
  ];
  return lines.filter(Boolean).join("\n") + "\n";
}

function renderCluster(c: HubClusterOptions): string[] {
  return [
    `cluster {`,
    `  name: ${q(c.name)}`,
    `  listen: ${q(`${c.host}:${c.port}`)}`,
    c.advertise ? `  advertise: ${q(c.advertise)}` : "",
    `  routes: [${c.routes.map(q).join(", ")}]`,
    `}`,
  ];
}

export interface LeafConfigOptions {
  device: string;
  storeDir: string;
  /** Local client listener (device apps, agent, bridge). Loopback only by default. */
  host?: string;
  port: number;
  /** -1 = pick a free port, undefined = no monitoring. */
  httpPort?: number;
  /** nats-leaf://host:port of the hub (comma-separated for several hub nodes). */
  hubUrls: string[];
  maxFileStore: number;
  /** Seconds between leaf reconnect attempts. */
  reconnectSeconds?: number;
  credentialsFile?: string;
}

export function renderLeafConfig(o: LeafConfigOptions): string {
  const device = checkId(o.device, "device id");
  const remote = [`urls: [${o.hubUrls.map(q).join(", ")}]`];
  if (o.credentialsFile) remote.push(`credentials: ${q(o.credentialsFile)}`);
  const lines = [
    `server_name: ${q(device)}`,
    `listen: ${q(`${o.host ?? "127.0.0.1"}:${o.port}`)}`,
    o.httpPort === undefined ? "" : `http: ${q(`127.0.0.1:${o.httpPort}`)}`,
    `max_payload: 8MB`,
    `jetstream {`,
    `  store_dir: ${q(o.storeDir)}`,
    `  domain: ${q(device)}`,
    `  max_file_store: ${o.maxFileStore}`,
    `  max_memory_store: 67108864`,
    `}`,
    `cluster { name: edge }`,
    `leafnodes {`,
    `  reconnect: ${o.reconnectSeconds ?? 2}`,
    `  remotes: [ { ${remote.join(", ")} } ]`,
    `}`,
  ];
  return lines.filter(Boolean).join("\n") + "\n";
}

/**
 * The JetStream file store limit: the requested size, but never more than `fraction` of the free
 * space where the store lives (a truly full disk wedges 2.9.10 JetStream).
 */
export async function fileStoreLimit(dir: string, requested: number, fraction = 0.8): Promise<number> {
  const s = await statfs(dir);
  const free = Number(s.bavail) * Number(s.bsize);
  return Math.max(16 * 2 ** 20, Math.min(requested, Math.floor(free * fraction)));
}

function q(s: string): string {
  return JSON.stringify(s);
}
