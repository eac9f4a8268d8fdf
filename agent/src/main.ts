import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Subjects, drainOrClose, errorMessage, natsServerVersion } from "@canopy/protocol";
import { AgentState } from "./state/store.js";
import { startLeaf } from "./leaf/leaf.js";
import { ensureUpStream, upMaxBytesFor } from "./up/stream.js";
import { UpPublisher } from "./up/publisher.js";
import { UpMonitor } from "./up/monitor.js";
import { FactsSampler } from "./presence/facts.js";
import { PresenceReporter } from "./presence/reporter.js";
import { agentModules } from "./modules.js";
import { AGENT_VERSION } from "./version.js";
import { SystemdNotifier } from "./service/notify.js";
import { ServiceLoop } from "./service/watchdog.js";
import type { AgentMetrics } from "./metrics/server.js";
import { HubClock } from "./clock/hub-clock.js";
import { DiskGuard } from "./disk/guard.js";
import { MirrorWatch } from "./leaf/mirror-watch.js";
import type { AgentContext, AgentModule } from "./context.js";
import type { AgentOptions } from "./options.js";
import type { Logger } from "./logging.js";

/**
 * Wires the device daemon: local state → leaf server → local connection → UP stream → presence →
 * feature modules. Runs until `signal` aborts, then stops everything in reverse order.
 */
export async function runAgent(
  o: AgentOptions,
  log: Logger,
  signal: AbortSignal,
  onReady?: (leafUrl: string, metricsUrl: string | undefined) => void,
): Promise<void> {
  const state = AgentState.open(o.data);
  const leaf = await startLeaf(
    {
      device: o.device,
      dataDir: o.data,
      hubUrls: o.hub,
      port: o.port,
      maxFileStore: o.maxFileStore,
      syncInterval: o.leaf.syncInterval,
      compression: o.leaf.compression,
      ...(o.httpPort === undefined ? {} : { httpPort: o.httpPort }),
      ...(o.credentials ? { credentialsFile: o.credentials } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
    },
    log,
  );
  const leafUrl = `nats://127.0.0.1:${leaf.ports.client}`;
  // Requests that cross to the hub get their replies on this device's own inbox prefix: its
  // credentials let the hub deliver `_INBOX.<dev>.>` to it and nothing of other devices'.
  const nc = await connect({
    servers: leafUrl,
    name: `canopy-agent-${o.device}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    inboxPrefix: Subjects.deviceInboxPrefix(o.device),
    // No Error objects built per request for async stack traces (two per JetStream publish).
    noAsyncTraces: true,
  });
  const jsm = await jetstreamManager(nc);
  // UP gets at most half of what the leaf may store (the rest: the CMD and config mirrors, and room
  // to recover): sized from the partition, so a small one never leaves UP unable to be created.
  const upMaxBytes = upMaxBytesFor(o.up.maxBytes, leaf.maxFileStore);
  if (upMaxBytes < o.up.maxBytes) log.warn({ configured: o.up.maxBytes, upMaxBytes, maxFileStore: leaf.maxFileStore }, "UP capped to fit the data partition");
  await ensureUpStream(jsm, o.device, { maxBytes: upMaxBytes, maxAgeMs: o.up.maxAge, duplicateWindowMs: o.up.duplicateWindow });

  const loops = new AbortController();
  const publisher = new UpPublisher(o.device, nc, state, log.child({ component: "up" }), loops.signal);
  publisher.start();
  const facts = new FactsSampler(o.data);
  await facts.start();
  const monitor = new UpMonitor(o.device, jsm, state, publisher, log.child({ component: "up" }));
  const startedAt = Date.now();
  const serverVersion = await natsServerVersion().catch(() => "unknown");
  const modules: AgentModule[] = agentModules(o);

  const clock = new HubClock();
  const disk = new DiskGuard(o.data, jsm, leaf.supervisor, log.child({ component: "disk" }));
  const reporter = new PresenceReporter(
    nc,
    {
      device: o.device,
      intervalMs: o.heartbeat,
      base: () => ({
        id: o.device,
        startedAt,
        groups: [],
        agent: { version: AGENT_VERSION, pid: process.pid },
        natsServer: { version: serverVersion },
        leaf: { url: leafUrl, compression: o.leaf.compression, syncInterval: o.leaf.syncInterval },
        facts: facts.current,
      }),
      contributors: [
        () => (monitor.backlog ? { up: monitor.backlog } : {}),
        ...modules.flatMap((m) => (m.status ? [m.status] : [])),
        () => (clock.skewMs === undefined ? {} : { clock: { skewMs: clock.skewMs, rttMs: clock.lastRttMs ?? 0 } }),
        () => ({ storage: disk.current }),
      ],
      clock,
    },
    log.child({ component: "presence" }),
  );

  // The bridge refuses MCU data (MQTT 5 PUBACK "quota exceeded") instead of retrying while this says full.
  disk.onState = (s, changed) => {
    if (!nc.isClosed()) nc.publish(Subjects.localStorage, JSON.stringify(s));
    if (changed) reporter.reportNow();
  };

  const ctx: AgentContext = {
    device: o.device,
    leafUrl,
    options: o,
    nc,
    jsm,
    leafMaxFileStore: leaf.maxFileStore,
    state,
    publisher,
    facts,
    clock,
    log,
    signal: loops.signal,
    reportNow: () => reporter.reportNow(),
  };
  const started: AgentModule[] = [];
  for (const m of modules) {
    await m.start(ctx);
    started.push(m);
  }
  const service = new ServiceLoop(
    new SystemdNotifier(log.child({ component: "systemd" })),
    [
      async () => {
        if (nc.isClosed()) throw new Error("leaf connection closed");
        await nc.flush();
      },
    ],
    log.child({ component: "service" }),
  );
  // Not while the disk is full: the mirrors cannot store, and the disk guard owns leaf restarts then.
  const mirrors = new MirrorWatch(o.device, nc, jsm, leaf.supervisor, log.child({ component: "mirrors" }), undefined, () => disk.current.full);
  const running = [
    monitor.run(loops.signal),
    reporter.run(loops.signal),
    service.run(loops.signal),
    disk.run(loops.signal),
    mirrors.run(loops.signal),
  ];
  let metrics: AgentMetrics | undefined;
  if (o.metricsPort !== undefined) {
    // Only with --metrics-port: an agent without it never loads prom-client.
    const { AgentMetrics } = await import("./metrics/server.js");
    metrics = new AgentMetrics({ nc, up: () => monitor.backlog, outbox: () => publisher.pending });
    publisher.onPublished = (s) => metrics?.publishSeconds.observe(s);
    await metrics.listen(Math.max(0, o.metricsPort));
  }
  publisher
    .publish(Subjects.presenceEvent(o.device), JSON.stringify({ state: "online", at: Date.now(), version: AGENT_VERSION }))
    .catch(() => {});
  log.info({ device: o.device, leaf: leafUrl, hub: o.hub, leafPid: leaf.supervisor.pid }, "agent running");
  onReady?.(leafUrl, metrics?.url);
  await service.ready(`device ${o.device} running, leaf ${leafUrl}`);

  await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
  leaf.supervisor.stopRestarting();
  log.info("agent stopping");
  await service.stopping();
  await metrics?.close();
  for (const m of started.reverse()) {
    await m.stop().catch((err) => log.warn({ module: m.name, err: errorMessage(err) }, "module stop failed"));
  }
  await reporter.signOff();
  loops.abort();
  facts.stop();
  await Promise.allSettled(running);
  await drainOrClose(nc);
  await leaf.supervisor.stop();
  await state.close();
}
