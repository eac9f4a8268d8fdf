import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { AgentState } from "./state/store.js";
import type { UpPublisher } from "./up/publisher.js";
import type { FactsSampler } from "./presence/facts.js";
import type { StatusContributor } from "./presence/reporter.js";
import type { Logger } from "./logging.js";
import type { AgentOptions } from "./options.js";
import type { HubClock } from "./clock/hub-clock.js";

/** What every agent module gets: the local leaf connection, local state, the upstream publisher. */
export interface AgentContext {
  device: string;
  options: AgentOptions;
  /** nats://127.0.0.1:PORT of the device's leaf server, for processes the agent starts. */
  leafUrl: string;
  /** Connection to the device's own leaf server (always local; survives hub outages). */
  nc: NatsConnection;
  /** The leaf's JetStream max_file_store (sized from the data partition): streams split it. */
  leafMaxFileStore: number;
  /** JetStream manager of the leaf's own domain. */
  jsm: JetStreamManager;
  state: AgentState;
  publisher: UpPublisher;
  facts: FactsSampler;
  /** Hub time for TTL decisions and report timestamps (the device clock may be wrong). */
  clock: HubClock;
  log: Logger;
  signal: AbortSignal;
  /** Ask for a presence report now (e.g. after applying config). */
  reportNow(): void;
}

/**
 * A capability of the agent (config, commands, queries, bridge supervision...). Modules start in
 * order after the leaf, UP and presence are up, and stop in reverse order.
 */
export interface AgentModule {
  readonly name: string;
  start(ctx: AgentContext): Promise<void>;
  stop(): Promise<void>;
  /** Adds fields to the device's status record on each heartbeat. */
  status?: StatusContributor;
}
