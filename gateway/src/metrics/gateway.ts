import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { Assets, CommandRecord, errorMessage, isTerminal } from "@canopy/protocol";
import { RolloutState } from "../config/rollout-model.js";
import { RolloutStore } from "../config/rollouts.js";
import type { FleetFeed } from "../http/feed.js";
import type { Logger } from "../logging.js";

/** Command ids already observed (a record is rewritten after it ends); bounded. */
const SEEN_LIMIT = 10_000;

/**
 * The gateway's Prometheus metrics, served at `/metrics` on the console port. Fleet gauges are read
 * when scraped (from the same fleet feed the console uses); command latency is observed from the
 * `commands` KV as records reach a terminal state; query latency from the console's queries.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly commandSeconds: Histogram;
  private readonly commandsEnded: Counter<"state">;
  private readonly querySeconds: Histogram;
  private readonly seen = new Set<string>();
  private readonly shardSeq = new Map<string, number>();
  private watchStop: (() => void) | undefined;

  constructor(
    private readonly nc: NatsConnection,
    feed: FleetFeed,
    private readonly log: Logger,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "canopy_gateway_" });
    new Gauge({
      name: "canopy_devices",
      help: "Enrolled devices by presence (offline after 3 missed heartbeats)",
      labelNames: ["state"],
      registers,
      async collect() {
        const rows = await feed.current();
        this.set({ state: "online" }, rows.filter((r) => r.online).length);
        this.set({ state: "offline" }, rows.filter((r) => !r.online).length);
      },
    });
    new Gauge({
      name: "canopy_device_backlog_messages",
      help: "Messages in a device's UP stream not yet in the hub, as of its last report",
      labelNames: ["device"],
      registers,
      async collect() {
        const rows = await feed.current();
        await feed.backlogSettled();
        this.reset();
        for (const r of rows) {
          const pending = feed.backlogOf(r.id)?.pending;
          if (pending !== undefined && pending !== null) this.set({ device: r.id }, pending);
        }
      },
    });
    const shardSeq = this.shardSeq;
    new Counter({
      name: "canopy_shard_ingested_messages_total",
      help: "Messages stored by a hub FLEET_UP shard (its last sequence); rate() gives the ingest rate",
      labelNames: ["shard"],
      registers,
      async collect() {
        const jsm = await jetstreamManager(nc);
        for await (const si of jsm.streams.list()) {
          const name = si.config.name;
          if (!name.startsWith(Assets.fleetUpShardPrefix)) continue;
          const last = si.state.last_seq;
          const delta = last - (shardSeq.get(name) ?? 0);
          if (delta > 0) this.inc({ shard: name }, delta);
          else this.inc({ shard: name }, 0);
          shardSeq.set(name, Math.max(last, shardSeq.get(name) ?? 0));
        }
      },
    });
    new Gauge({
      name: "canopy_rollouts",
      help: "Config rollouts by state",
      labelNames: ["state"],
      registers,
      async collect() {
        const all = await (await RolloutStore.open(nc)).list();
        for (const state of RolloutState.options) this.set({ state }, all.filter((r) => r.state === state).length);
      },
    });
    this.commandsEnded = new Counter({
      name: "canopy_commands_ended_total",
      help: "Commands that reached a terminal state, by that state",
      labelNames: ["state"],
      registers,
    });
    this.commandSeconds = new Histogram({
      name: "canopy_command_duration_seconds",
      help: "Time from sending a command until the gateway recorded its terminal state (any outcome; see canopy_commands_ended_total)",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.querySeconds = new Histogram({
      name: "canopy_query_duration_seconds",
      help: "Duration of live fleet queries run by the console",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
  }

  observeQuery(seconds: number): void {
    this.querySeconds.observe(seconds);
  }

  /** Watches the command index for records that end (updates only: history is not re-counted). */
  async start(): Promise<void> {
    const kv = await new Kvm(this.nc).open(Assets.kvCommands);
    const watch = await kv.watch({ key: "*.*", include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
    this.watchStop = () => void watch.stop();
    void (async () => {
      for await (const e of watch) {
        const r = CommandRecord.safeParse(safeJson(e.json.bind(e)));
        if (!r.success || !isTerminal(r.data.state) || this.seen.has(r.data.id)) continue;
        this.seen.add(r.data.id);
        if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value as string);
        // Both ends on the control plane's clocks: the sender's createdAt and the gateway's updatedAt of
        // the record that first says it ended. The device's times[state] is its estimate of hub time
        // (±half a round trip), which made fast commands come out at 0 s or below.
        this.commandsEnded.inc({ state: r.data.state });
        this.commandSeconds.observe(Math.max(0, r.data.updatedAt - r.data.createdAt) / 1000);
      }
    })().catch((err) => this.log.warn({ err: errorMessage(err) }, "command metrics watch ended"));
  }

  stop(): void {
    this.watchStop?.();
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}

function safeJson(read: () => unknown): unknown {
  try {
    return read();
  } catch {
    return undefined;
  }
}
