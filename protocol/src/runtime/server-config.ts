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
  /** Monitoring listens here; loopback unless told otherwise (it shows connections and subjects). */
  httpHost?: string;
  auth: HubAuthOptions;
  /** TLS on the leafnode listener (client certificates from the fleet CA required). */
  leafTls: TlsFilesConfig;
  /** TLS on the client port too (operators, gateways). */
  clientTls?: TlsFilesConfig;
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
  ];
  return lines.filter(Boolean).join("\n") + "\n";
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
  /** Client certificate for the leaf link and the CA that signed the hub's. */
  tls?: TlsFilesConfig;
}

export function renderLeafConfig(o: LeafConfigOptions): string {
  const device = checkId(o.device, "device id");
  const remote = [`urls: [${o.hubUrls.map(q).join(", ")}]`];
  if (o.credentialsFile) remote.push(`credentials: ${q(o.credentialsFile)}`);
  if (o.tls) remote.push(`tls: { cert_file: ${q(o.tls.certFile)}, key_file: ${q(o.tls.keyFile)}, ca_file: ${q(o.tls.caFile)}, timeout: 5 }`);
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
