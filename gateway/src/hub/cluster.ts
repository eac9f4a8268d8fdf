import { hostname, networkInterfaces } from "node:os";
import type { Command } from "commander";
import { CanopyError, ErrorCode, type HubClusterOptions } from "@canopy/protocol";

const ROUTE = /^nats-route:\/\/([^\s:/,]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export interface ClusterFlags {
  serverName?: string | undefined;
  clusterName?: string | undefined;
  clusterPort?: string | undefined;
  clusterHost?: string | undefined;
  clusterAdvertise?: string | undefined;
  routes?: string | undefined;
  leafUrls?: string | undefined;
}

/**
 * The cluster block of a hub node from its flags, validated at the door (INVALID_INPUT names the
 * flag). Every node gets the same --routes list (all nodes); this node's own route is dropped, so
 * one list serves the whole cluster. Undefined when no cluster flag was given (a single node).
 */
export function clusterFromFlags(f: ClusterFlags, host: string): HubClusterOptions | undefined {
  const given = f.clusterName !== undefined || f.clusterPort !== undefined || f.routes !== undefined;
  if (!given) return undefined;
  const bad = (msg: string): never => {
    throw new CanopyError(ErrorCode.InvalidInput, msg);
  };
  if (!f.clusterName || !NAME.test(f.clusterName)) bad("--cluster-name is required for a cluster node (letters, digits, _ and -)");
  if (!f.serverName || !NAME.test(f.serverName)) bad("--server-name is required for a cluster node and must be unique in the cluster");
  const port = Number(f.clusterPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) bad("--cluster-port must be a port number (1-65535)");
  const routes = (f.routes ?? "").split(",").map((r) => r.trim()).filter(Boolean);
  if (routes.length === 0) bad("--routes needs the nats-route://HOST:PORT of every node (comma-separated)");
  for (const r of routes) if (!ROUTE.test(r)) bad(`--routes: ${JSON.stringify(r)} is not nats-route://HOST:PORT`);
  const clusterHost = f.clusterHost ?? host;
  const others = routes.filter((r) => !isOwnRoute(r, clusterHost, port, f.clusterAdvertise));
  return {
    name: f.clusterName as string,
    host: clusterHost,
    port,
    routes: others,
    ...(f.clusterAdvertise ? { advertise: f.clusterAdvertise } : {}),
  };
}

/** `--leaf-urls`: the nats-leaf:// (or tls://) URLs devices get in their bundles, one per node. */
export function leafUrlList(text: string): string[] {
  const urls = text.split(",").map((u) => u.trim()).filter(Boolean);
  const bad = urls.find((u) => !/^(nats-leaf|tls):\/\/[^\s,]+:\d{1,5}$/.test(u));
  if (urls.length === 0 || bad !== undefined) {
    throw new CanopyError(ErrorCode.InvalidInput, `--leaf-urls: ${JSON.stringify(bad ?? text)} is not nats-leaf://HOST:PORT`);
  }
  return urls;
}

/** JetStream replicas for Canopy's streams and buckets: 3 in a cluster of 3 or more, else 1. */
export function replicasFor(cluster: HubClusterOptions | undefined): number {
  return cluster ? Math.min(3, cluster.routes.length + 1) : 1;
}

function isOwnRoute(route: string, listenHost: string, port: number, advertise: string | undefined): boolean {
  const m = ROUTE.exec(route);
  if (!m) return false;
  const [, host = "", p] = m;
  if (advertise && `${host}:${p}` === advertise) return true;
  if (Number(p) !== port) return false;
  if (listenHost !== "0.0.0.0" && listenHost !== "::") return host === listenHost || (isLoopback(host) && isLoopback(listenHost));
  return isLoopback(host) || localNames().has(host.replace(/^\[|\]$/g, ""));
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host.startsWith("127.") || host === "[::1]" || host === "::1";
}

function localNames(): Set<string> {
  const names = new Set<string>([hostname()]);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address);
  return names;
}

/** The cluster flags of `canopy hub start`. */
export function addClusterOptions(cmd: Command): Command {
  return cmd
    .option("--server-name <name>", "this node's name, unique in the cluster (default: hub)")
    .option("--cluster-name <name>", "run as a node of this hub cluster (same on every node)")
    .option("--cluster-port <port>", "port the cluster's route connections use on this node")
    .option("--cluster-host <addr>", "address for route connections (default: --host)")
    .option("--cluster-advertise <host:port>", "route address the other nodes should dial (behind NAT)")
    .option("--routes <urls>", "nats-route://HOST:PORT of every node, comma-separated (a node skips its own)")
    .option("--leaf-urls <urls>", "every node's leafnode URL, comma-separated, for device bundles (default: this node's)");
}
