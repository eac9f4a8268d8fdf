import { createServer, type Server, type Socket } from "node:net";
import { CanopyError, ErrorCode } from "@canopy/protocol";
import type { Counters } from "../counters.js";
import type { McuHub } from "../core/hub.js";
import type { Logger } from "../log.js";
import type { Database } from "lmdb";
import type { DedupEntry } from "../registry/store.js";
import type { AuthPolicy } from "./auth.js";
import { ByteBudget } from "./budget.js";
import type { ProfileRouter } from "./profiles/router.js";
import { MqttConnection, type MqttLimits } from "./connection.js";

export interface MqttListenerOptions {
  host: string;
  port: number;
  limits: MqttLimits;
  hub: McuHub;
  counters: Counters;
  log: Logger;
  dedup: Database<DedupEntry, string>;
  auth: AuthPolicy;
  router: ProfileRouter;
  maxConnections: number;
  maxBufferedBytes: number;
}

/** `HOST:PORT` → parts; `:1883` means all interfaces. */
export function parseHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  const port = Number(s.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CanopyError(ErrorCode.InvalidInput, `expected HOST:PORT, got ${JSON.stringify(s)}`);
  }
  return { host: s.slice(0, i) || "0.0.0.0", port };
}

/** The MQTT listener: one `MqttConnection` per socket, one live connection per client id. */
export class MqttListener {
  private server: Server | undefined;
  private readonly conns = new Set<MqttConnection>();
  private readonly byClient = new Map<string, MqttConnection>();
  port = 0;
  readonly budget: ByteBudget;

  constructor(private readonly o: MqttListenerOptions) {
    this.budget = new ByteBudget(o.maxBufferedBytes);
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Largest partial packet any connection ever buffered. */
  get framerHighWater(): number {
    let m = this.retiredHighWater;
    for (const c of this.conns) m = Math.max(m, c.framerHighWater);
    return m;
  }
  private retiredHighWater = 0;

  async start(): Promise<number> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    server.maxConnections = this.o.maxConnections;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => this.o.log.error({ err: err.message }, "mqtt listener error"));
    const addr = server.address();
    this.port = typeof addr === "object" && addr ? addr.port : this.o.port;
    this.o.log.info({ host: this.o.host, port: this.port }, "mqtt listener ready");
    return this.port;
  }

  private accept(socket: Socket): void {
    const log = this.o.log;
    const conn = new MqttConnection(socket, {
      hub: this.o.hub,
      counters: this.o.counters,
      log,
      limits: this.o.limits,
      dedup: this.o.dedup,
      auth: this.o.auth,
      router: this.o.router,
      budget: this.budget,
      claim: (c) => {
        const old = this.byClient.get(c.clientId);
        this.byClient.set(c.clientId, c);
        if (old && old !== c) {
          this.o.counters.inc("mqtt.takeovers");
          old.close("taken over");
        }
      },
      release: (c) => {
        if (this.byClient.get(c.clientId) === c) this.byClient.delete(c.clientId);
        this.retiredHighWater = Math.max(this.retiredHighWater, c.framerHighWater);
        this.conns.delete(c);
      },
    });
    this.conns.add(conn);
    this.o.counters.inc("mqtt.accepted");
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of [...this.conns]) c.close("bridge stopped");
    await closed;
  }
}
