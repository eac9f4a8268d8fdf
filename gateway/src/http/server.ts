import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, errorMessage } from "@canopy/protocol";
import type { Logger } from "../logging.js";
import { GatewayMetrics } from "../metrics/gateway.js";
import { apiRoutes } from "./api.js";
import { clearSessionCookie, loginFromUrl, requireWrite, sessionOf, setSessionCookie } from "./auth.js";
import { FleetFeed } from "./feed.js";
import { baseHeaders, readJson, sendError, sendJson } from "./respond.js";
import { match, STREAMED, type ApiServices, type Route } from "./routes.js";
import { StaticAssets } from "./static.js";
import { ConsoleTokens } from "./tokens.js";
import { serveTokenRequests } from "./token-service.js";

export const DEFAULT_CONSOLE_PORT = 8420;

export interface ConsoleOptions {
  /** The hub's data dir: the token secret lives in `<data>/console/`. */
  data: string;
  host: string;
  /** 0 = any free port. */
  port: number;
}

/**
 * The web console and `/metrics`, served from the hub process on the gateway's own hub connection.
 * Pages are static (bundled at build time); data comes from the JSON API, which calls the same
 * modules as the CLI (registry, upstream, config, commands, query).
 */
export class ConsoleServer {
  private server: Server | undefined;
  private readonly routes: Route[] = apiRoutes();
  private readonly services: ApiServices;
  private stopTokens: (() => void) | undefined;
  url = "";

  private constructor(
    private readonly tokens: ConsoleTokens,
    private readonly assets: StaticAssets,
    nc: NatsConnection,
    private readonly log: Logger,
  ) {
    const feed = new FleetFeed(nc, log);
    this.services = { nc, feed, metrics: new GatewayMetrics(nc, feed, log), log };
  }

  static async start(nc: NatsConnection, o: ConsoleOptions, log: Logger): Promise<ConsoleServer> {
    const [tokens, assets] = await Promise.all([ConsoleTokens.open(o.data), StaticAssets.load()]);
    if (!assets.built) log.warn("the console front end was not built (npm run build); pages answer 503");
    const s = new ConsoleServer(tokens, assets, nc, log);
    const server = createServer((req, res) => void s.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(o.port, o.host, () => resolve());
    });
    server.on("error", (err) => log.error({ err: err.message }, "console server error"));
    s.server = server;
    const addr = server.address() as AddressInfo;
    const host = o.host === "0.0.0.0" || o.host === "::" ? "127.0.0.1" : o.host;
    s.url = `http://${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
    await s.services.metrics.start();
    s.stopTokens = serveTokenRequests(nc, tokens, () => s.url, log);
    log.info({ url: s.url }, "console listening");
    return s;
  }

  /** A URL that logs a browser in once (what `canopy console open` prints). */
  loginUrl(readOnly = false): string {
    return `${this.url}/?token=${encodeURIComponent(this.tokens.mint({ readOnly }).token)}`;
  }

  async stop(): Promise<void> {
    this.stopTokens?.();
    this.services.feed.stop();
    this.services.metrics.stop();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    baseHeaders(res);
    try {
      const url = new URL(req.url ?? "/", "http://console.invalid");
      const path = url.pathname;
      if (path === "/metrics") {
        const text = await this.services.metrics.text();
        res.writeHead(200, { "Content-Type": this.services.metrics.registry.contentType, "Cache-Control": "no-store" });
        res.end(text);
        return;
      }
      if (path === "/api/login" && req.method === "POST") return this.login(req, res);
      if (path === "/api/logout" && req.method === "POST") {
        clearSessionCookie(res, false);
        return sendJson(res, 200, { ok: true });
      }
      if (path.startsWith("/api/")) return await this.api(req, res, url);
      if (req.method !== "GET" && req.method !== "HEAD") throw new CanopyError(ErrorCode.InvalidInput, `${req.method} is not allowed here`);
      if (loginFromUrl(this.tokens, url, res, false)) return;
      this.assets.serve(req, res, path);
    } catch (err) {
      if (!(err instanceof CanopyError)) this.log.warn({ url: req.url?.replace(/token=[^&]*/g, "token=…"), err: errorMessage(err) }, "console request failed");
      sendError(res, err);
    }
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const found = match(this.routes, req.method ?? "GET", url.pathname);
    // Authentication comes before anything else, so an anonymous caller learns nothing, not even 404s.
    const session = sessionOf(this.tokens, req);
    if (found === undefined) throw new CanopyError(ErrorCode.NotFound, `no API endpoint ${url.pathname}`);
    if (found === "method") throw new CanopyError(ErrorCode.InvalidInput, `${req.method} is not allowed on ${url.pathname}`);
    if (found.route.write) requireWrite(session);
    const body = await found.route.handler({ req, res, url, params: found.params, session, services: this.services });
    if (body !== STREAMED) sendJson(res, 200, body);
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { token } = await readJson(req);
    const session = typeof token === "string" ? this.tokens.verify(token) : undefined;
    if (!session || typeof token !== "string") throw new CanopyError(ErrorCode.Unauthorized, "the console token is invalid, expired or revoked");
    setSessionCookie(res, token, session, false);
    sendJson(res, 200, { id: session.id, readOnly: session.readOnly, expiresAt: session.expiresAt });
  }
}
