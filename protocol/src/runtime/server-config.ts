import { statfs } from "node:fs/promises";
import { checkId } from "../ids.js";
import { HUB_DOMAIN } from "../subjects.js";

/**
 * nats-server configs for the hub and for a device leaf (nats-server >= 2.14). Facts behind them:
 * every leaf needs its own JetStream domain and server_name; all leaves share `cluster { name: edge }`
 * so interest does not flow leaf to leaf; the hub must advertise the leafnode address devices should
 * dial; max_file_store sits below the free space so the server's own limit, not ENOSPC, is what a
 * full partition hits first.
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
  /** Monitoring listens here; loopback unless told otherwise (it shows connections and subjects). */
  httpHost?: string;
  auth: HubAuthOptions;
  /** TLS on the leafnode listener (client certificates from the fleet CA required). */
  leafTls: TlsFilesConfig;
  /** TLS on the client port too (operators, gateways). */
  clientTls?: TlsFilesConfig;
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

/** Operator mode with a full resolver (revocations persist in `resolverDir` across restarts). */
export interface HubAuthOptions {
  operatorJwt: string;
  systemAccount: string;
  resolverDir: string;
  /** account public key → JWT, stored by the resolver when newer than what it has. */
  preload: Record<string, string>;
}

export interface TlsFilesConfig {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export function renderHubConfig(o: HubConfigOptions): string {
  const advertise = o.advertise ?? `${o.host === "0.0.0.0" ? "127.0.0.1" : o.host}:${o.leafPort}`;
  const tls = (t: TlsFilesConfig, verify: boolean): string =>
    `tls { cert_file: ${q(t.certFile)}, key_file: ${q(t.keyFile)}, ca_file: ${q(t.caFile)}, verify: ${verify}, timeout: 5 }`;
  const lines = [
    `server_name: ${q(o.serverName ?? "hub")}`,
    `listen: ${q(`${o.host}:${o.port}`)}`,
    o.httpPort >= 0 || o.httpPort === -1 ? `http: ${q(`${o.httpHost ?? "127.0.0.1"}:${o.httpPort}`)}` : "",
    `max_payload: 8MB`,
    `operator: ${q(o.auth.operatorJwt)}`,
    `system_account: ${q(o.auth.systemAccount)}`,
    `resolver: { type: full, dir: ${q(o.auth.resolverDir)}, allow_delete: false, interval: "2m", timeout: "5s" }`,
    // A client must send CONNECT (signed nonce) within this: the 2 s default refused simulated
    // fleets connecting 32 at a time on a loaded 2-core machine ("Authentication Timeout").
    `authorization { timeout: 10 }`,
    `resolver_preload: {`,
    ...Object.entries(o.auth.preload).map(([k, v]) => `  ${k}: ${q(v)}`),
    `}`,
    o.clientTls ? tls(o.clientTls, false) : "",
    `jetstream {`,
    `  store_dir: ${q(o.storeDir)}`,
    `  domain: ${HUB_DOMAIN}`,
    `  max_file_store: ${o.maxFileStore}`,
    `  max_memory_store: 268435456`,
    `}`,
    `leafnodes {`,
    `  listen: ${q(`${o.host}:${o.leafPort}`)}`,
    o.leafPort === -1 ? "" : `  advertise: ${q(advertise)}`,
    `  ${tls(o.leafTls, true)}`,
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

/** The leaf's JetStream sync interval unless configured (see LeafConfigOptions.syncInterval). */
export const DEFAULT_LEAF_SYNC_INTERVAL = "100ms";

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
  /**
   * Seconds between leaf reconnect attempts (base). The server adds up to the same again as jitter
   * after a failed dial; the first retry after a drop is not jittered, so the base itself is spread
   * per device (up to +50 %, from the device id) and a fleet does not redial a restarted hub in step.
   */
  reconnectSeconds?: number;
  credentialsFile?: string;
  /** Client certificate for the leaf link and the CA that signed the hub's. */
  tls?: TlsFilesConfig;
  /**
   * JetStream `sync_interval`. DEFAULT_LEAF_SYNC_INTERVAL ("100ms") bounds what a power cut can take
   * to the writes acked in the last 100 ms (plus the fsync itself); "always" fsyncs every write before
   * its ack (nothing acked is lost) at ~1/8 of the publish rate (measured: 946 vs 7,732 msg/s, 2 cores).
   */
  syncInterval?: string;
  /** Leaf link compression: s2_auto (default) adapts to the link's RTT (cellular), "off" disables. */
  compression?: string;
}

export function renderLeafConfig(o: LeafConfigOptions): string {
  const device = checkId(o.device, "device id");
  const remote = [`urls: [${o.hubUrls.map(q).join(", ")}]`, `compression: ${q(o.compression ?? "s2_auto")}`];
  if (o.credentialsFile) remote.push(`credentials: ${q(o.credentialsFile)}`);
  if (o.tls) remote.push(`tls: { cert_file: ${q(o.tls.certFile)}, key_file: ${q(o.tls.keyFile)}, ca_file: ${q(o.tls.caFile)}, timeout: 5 }`);
  const reconnectMs = Math.round((o.reconnectSeconds ?? 2) * 1000 * (1 + 0.5 * idFraction(device)));
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
    `  sync_interval: ${q(o.syncInterval ?? DEFAULT_LEAF_SYNC_INTERVAL)}`,
    `}`,
    `cluster { name: edge }`,
    `leafnodes {`,
    `  reconnect: ${q(`${reconnectMs}ms`)}`,
    `  remotes: [ { ${remote.join(", ")} } ]`,
    `}`,
  ];
  return lines.filter(Boolean).join("\n") + "\n";
}

/**
 * The JetStream file store limit: the requested size, but never more than `fraction` of the free
 * space where the store lives (a truly full disk wedges 2.9.10 JetStream).
 */
export async function fileStoreLimit(dir: string, requested: number, fraction = 0.8, usedByStore = 0): Promise<number> {
  const s = await statfs(dir);
  const free = Number(s.bavail) * Number(s.bsize);
  // What the store already holds counts as room: a store that filled the disk must still fit its limit.
  return Math.max(16 * 2 ** 20, Math.min(requested, Math.floor((free + usedByStore) * fraction)));
}

/** A stable number in [0, 1) from an id (FNV-1a), to spread per-device timings. */
function idFraction(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) / 2 ** 32;
}

function q(s: string): string {
  return JSON.stringify(s);
}
