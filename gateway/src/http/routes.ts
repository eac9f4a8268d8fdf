import type { IncomingMessage, ServerResponse } from "node:http";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../logging.js";
import type { GatewayMetrics } from "../metrics/gateway.js";
import type { FleetFeed } from "./feed.js";
import type { Session } from "./tokens.js";

/** What API handlers get: the gateway's own hub connection and the services built on it. */
export interface ApiServices {
  nc: NatsConnection;
  feed: FleetFeed;
  metrics: GatewayMetrics;
  log: Logger;
}

export interface ApiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  session: Session;
  services: ApiServices;
}

/** A handler returns the JSON body, or STREAMED when it wrote the response itself (SSE, NDJSON). */
export const STREAMED = Symbol("streamed");
export type Handler = (r: ApiRequest) => Promise<unknown>;

export interface Route {
  method: "GET" | "POST";
  pattern: RegExp;
  /** Changes something: refused (403) for read-only tokens. */
  write: boolean;
  handler: Handler;
  /** Names of the pattern's groups, in order. */
  names: string[];
}

const ID = "([A-Za-z0-9_-]{1,64})";

/** `/api/devices/:id/...` → a RegExp whose groups are the params, in order. */
export function route(method: Route["method"], path: string, handler: Handler, write = false): Route {
  const names: string[] = [];
  const src = path.replace(/:([a-z]+)/g, (_m, name: string) => {
    names.push(name);
    return ID;
  });
  return { method, pattern: new RegExp(`^${src}$`), write, handler, names };
}

export function match(routes: Route[], method: string, path: string): { route: Route; params: Record<string, string> } | "method" | undefined {
  let pathMatched = false;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (r.method !== method) continue;
    const params: Record<string, string> = {};
    r.names.forEach((n, i) => (params[n] = m[i + 1] ?? ""));
    return { route: r, params };
  }
  return pathMatched ? "method" : undefined;
}
