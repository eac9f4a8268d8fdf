import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { BRIDGE_STATS_SUBJECT, type UpBacklog } from "@canopy/protocol";

export interface AgentMetricsSources {
  nc: NatsConnection;
  /** The UP stream as the monitor last read it. */
  up: () => UpBacklog | undefined;
  /** Messages in the agent's LMDB outbox not yet acked by UP. */
  outbox: () => number;
}

interface BridgeStatsReply {
  counters?: Record<string, number>;
  published?: number;
  duplicates?: number;
  mcus?: number;
  online?: number;
  mqtt?: { connections?: number };
}

/** Sets a counter to a monotonic total read from elsewhere (UP sequences, bridge totals). */
function advance(c: Counter<string>, seen: Map<string, number>, key: string, labels: Record<string, string>, total: number): void {
  const delta = total - (seen.get(key) ?? 0);
  c.inc(labels, delta > 0 ? delta : 0);
  if (delta > 0) seen.set(key, total);
}

/**
 * The agent's Prometheus metrics on a loopback-only HTTP port: the UP stream (messages, bytes,
 * stored and discarded totals), the outbox, publish latency into UP, and the firmware bridge's
 * counters and MCU count (asked on the leaf-local `local.bridge.stats` at scrape time).
 */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly publishSeconds: Histogram;
  private server: Server | undefined;
  url = "";

  constructor(src: AgentMetricsSources) {
    const registers = [this.registry];
    const seen = new Map<string, number>();
    collectDefaultMetrics({ register: this.registry, prefix: "canopy_agent_" });
    const up = (name: string, help: string, pick: (b: UpBacklog) => number | undefined): Gauge =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const b = src.up();
          const v = b ? pick(b) : undefined;
          if (v !== undefined) this.set(v);
        },
      });
    up("canopy_agent_up_stream_messages", "Messages held in the device's UP stream", (b) => b.messages);
    up("canopy_agent_up_stream_bytes", "Bytes held in the device's UP stream", (b) => b.bytes);
    up("canopy_agent_up_pending_messages", "UP messages the hub's source has not taken yet, as the leaf sees it", (b) => b.pending);
    new Counter({
      name: "canopy_agent_up_stored_messages_total",
      help: "Messages stored in UP since the stream was created (its last sequence)",
      registers,
      collect() {
        const b = src.up();
        if (b) advance(this, seen, "stored", {}, b.lastSeq);
      },
    });
    new Counter({
      name: "canopy_agent_up_discarded_messages_total",
      help: "Messages UP dropped because it was full",
      registers,
      collect() {
        const b = src.up();
        if (b) advance(this, seen, "discarded", {}, b.discarded);
      },
    });
    new Gauge({ name: "canopy_agent_outbox_messages", help: "Agent messages written to the outbox, not yet acked by UP", registers, collect() { this.set(src.outbox()); } });
    this.publishSeconds = new Histogram({
      name: "canopy_agent_publish_duration_seconds",
      help: "Agent publish into the local UP stream: outbox write to stream ack",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    const bridge = async (): Promise<BridgeStatsReply | undefined> => {
      try {
        return (await src.nc.request(BRIDGE_STATS_SUBJECT, "", { timeout: 500 })).json<BridgeStatsReply>();
      } catch {
        return undefined; // no bridge on this device
      }
    };
    new Gauge({
      name: "canopy_agent_mcus",
      help: "MCUs known to the device's firmware bridge, by link state",
      labelNames: ["state"],
      registers,
      async collect() {
        const s = await bridge();
        this.set({ state: "online" }, s?.online ?? 0);
        this.set({ state: "offline" }, Math.max(0, (s?.mcus ?? 0) - (s?.online ?? 0)));
      },
    });
    new Counter({
      name: "canopy_bridge_messages_total",
      help: "Firmware bridge totals: readings published into UP, duplicates dropped, and every refusal counter (counter=<area>.<reason>)",
      labelNames: ["counter"],
      registers,
      async collect() {
        const s = await bridge();
        if (!s) return;
        const totals: Record<string, number> = { published: s.published ?? 0, duplicates: s.duplicates ?? 0, ...s.counters };
        for (const [name, v] of Object.entries(totals)) if (typeof v === "number") advance(this, seen, `bridge:${name}`, { counter: name }, v);
      },
    });
  }

  /** Listens on 127.0.0.1 only (0 = any free port); serves GET /metrics and nothing else. */
  async listen(port: number): Promise<string> {
    const server = createServer((req, res) => {
      if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("only GET /metrics here\n");
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "Content-Type": this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { "Content-Type": "text/plain" }).end(`${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
