import { existsSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { BridgeConfig, checkId, errorMessage, type BridgeConfigInput } from "@canopy/protocol";
import { Counters } from "./counters.js";
import { McuHub } from "./core/hub.js";
import { builtinFlashers } from "./flash/registry.js";
import { FlashService } from "./flash/service.js";
import { silentLogger, type Logger } from "./log.js";
import { MqttListener, parseHostPort } from "./mqtt/listener.js";
import { ProfileRouter } from "./mqtt/profiles/router.js";
import { connectLeaf } from "./nats/connect.js";
import { UpPublisher } from "./nats/publisher.js";
import { StorageWatch } from "./nats/storage.js";
import { answerQueries } from "./nats/queries.js";
import { SeqAllocator } from "./nats/seq.js";
import { answerCreds } from "./registry/creds.js";
import { McuRegistry } from "./registry/registry.js";
import { forgetDedup, openBridgeStore, type BridgeStore } from "./registry/store.js";
import { nodeSerialIo, type SerialIo } from "./serial/io.js";
import { PortLink } from "./serial/link.js";
import { parsePortSpec, scanPorts } from "./serial/ports.js";

export interface BridgeOptions {
  device: string;
  /** nats://127.0.0.1:PORT of the device's leaf server. */
  leaf: string;
  /** LMDB directory (registry, sequence, dedup index). */
  dataDir: string;
  /** The agent's `bridge:` config section (validated here, defaults applied). */
  config?: BridgeConfigInput;
  log?: Logger;
  /** Serial hardware seam; default real ports through serialport. */
  io?: SerialIo;
  /** Called once everything listens; `mqttPort` is the bound port (useful with port 0). */
  onReady?: (info: { mqttPort?: number }) => void;
}

export interface BridgeStats {
  device: string;
  counters: Record<string, number>;
  published: number;
  duplicates: number;
  /** Atomic batches the UP stream stored (0 when it does not allow them). */
  batches: number;
  mcus: number;
  online: number;
  registryPruned: number;
  mqtt?: { port: number; connections: number; framerHighWater: number; bufferedHighWater: number };
  serial: { ports: number; decoderHighWater: number };
  memory: NodeJS.MemoryUsage;
  uptimeMs: number;
}

/**
 * Runs the firmware bridge until `signal` aborts: MCUs on serial ports and MQTT, their traffic into the
 * leaf's UP stream, the agent's commands (`local.<dev>.mcu.<mcu>.cmd.<name>`) to them. The agent can call this
 * in-process with its `bridge:` config section; `canopy bridge` calls it from the CLI.
 */
export async function runBridge(options: BridgeOptions, signal: AbortSignal): Promise<void> {
  const device = checkId(options.device, "device id");
  const cfg = BridgeConfig.parse(options.config ?? {});
  const log = (options.log ?? silentLogger()).child({ device });
  const specs = cfg.serial.map((s) => parsePortSpec(s, cfg.baudRate));
  const started = Date.now();

  const store: BridgeStore = openBridgeStore(options.dataDir);
  const registry = new McuRegistry(store.mcus, cfg.maxMcus, (id) => {
    forgetDedup(store.dedup, id);
    void store.sessions.remove(id).catch(() => {});
  });
  await registry.markAllOffline();
  const seqs = await SeqAllocator.open(store.meta);
  // Publishes outlive the links by a moment (offline events at shutdown), so they stop on their own signal.
  const pubStop = new AbortController();
  const linkStop = new AbortController();
  const onAbort = (): void => linkStop.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });

  let nc: NatsConnection | undefined;
  let listener: MqttListener | undefined;
  const links: PortLink[] = [];
  let serialDone: Promise<void> = Promise.resolve();
  // lastSeen is cosmetic: while the disk guard says the partition is full, it waits in memory (LMDB
  // commits that meet ENOSPC fail, and lmdb-js has been seen to corrupt its native heap on them).
  const storage = new StorageWatch();
  const flushTimer = setInterval(() => {
    if (!storage.refusal()) void registry.flush().catch(() => {});
  }, 5_000);
  try {
    nc = await connectLeaf(options.leaf, `canopy-bridge-${device}`, log.child({ component: "nats" }), signal);
    const counters = new Counters();
    storage.listen(nc);
    const publisher = new UpPublisher({ nc, device, seqs, dedup: store.dedup, log: log.child({ component: "publisher" }), signal: pubStop.signal, refusal: () => storage.refusal() });
    const hub = new McuHub({ device, publisher, registry, counters, log: log.child({ component: "hub" }), commandTimeoutMs: cfg.commandTimeoutMs });
    hub.listen(nc);
    const flashing = new FlashService({ device, hub, registry, publisher, flashers: builtinFlashers(options.io), log: log.child({ component: "flash" }) });
    flashing.listen(nc);
    const stats = (): BridgeStats => {
      const list = registry.list();
      return {
        device,
        counters: counters.snapshot(),
        published: publisher.published,
        duplicates: publisher.duplicates,
        batches: publisher.batches,
        mcus: list.length,
        online: list.filter((m) => m.online).length,
        registryPruned: registry.pruned,
        ...(listener ? { mqtt: { port: listener.port, connections: listener.connections, framerHighWater: listener.framerHighWater, bufferedHighWater: listener.budget.highWater } } : {}),
        serial: { ports: links.length, decoderHighWater: Math.max(0, ...links.map((l) => l.decoderHighWater)) },
        memory: process.memoryUsage(),
        uptimeMs: Date.now() - started,
      };
    };
    answerQueries(nc, () => registry.list(), stats);
    answerCreds(nc, store.creds, counters, log.child({ component: "creds" }));

    if (cfg.mqtt) {
      const { host, port } = parseHostPort(cfg.mqtt.listen);
      const m = cfg.mqtt;
      if (m.anonymous) log.warn("MQTT ANONYMOUS ACCESS IS ON: any client that reaches this port may publish as an MCU (development only; give MCUs credentials with canopy mcu creds)");
      const auth = { creds: store.creds, users: m.users, anonymous: m.anonymous };
      const router = new ProfileRouter(m.profiles, m.custom);
      listener = new MqttListener({ host, port, hub, counters, log: log.child({ component: "mqtt" }), limits: m, dedup: store.dedup, auth, router, sessions: store.sessions, maxConnections: m.maxConnections, maxBufferedBytes: m.maxBufferedBytes });
      await listener.start();
    }
    const io = options.io ?? nodeSerialIo;
    serialDone = scanPorts(
      specs,
      cfg.rescanMs,
      (path, spec, fromGlob) => {
        const link = new PortLink({
          path,
          baudRate: spec.baudRate,
          mode: spec.mode,
          maxFrameBytes: cfg.maxFrameBytes,
          io,
          hub,
          counters,
          log: log.child({ component: "serial" }),
          stopWhenGone: fromGlob,
          exists: existsSync,
          meta: store.meta,
        });
        links.push(link);
        return link.run(linkStop.signal).finally(() => links.splice(links.indexOf(link), 1));
      },
      linkStop.signal,
    );
    log.info({ mqttPort: listener?.port, serial: cfg.serial, leaf: options.leaf }, "bridge ready");
    options.onReady?.(listener ? { mqttPort: listener.port } : {});
    if (!signal.aborted) await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));

    log.info("bridge stopping");
    await listener?.stop();
    flashing.stop();
    await serialDone;
    hub.stop();
    // Give the offline events of the links just closed a moment to reach UP.
    await bounded(publisher.idle(), 2_000);
  } catch (err) {
    if (!signal.aborted) throw err;
    log.debug({ err: errorMessage(err) }, "stopped during startup");
  } finally {
    signal.removeEventListener("abort", onAbort);
    linkStop.abort();
    pubStop.abort();
    clearInterval(flushTimer);
    await listener?.stop().catch(() => {});
    await serialDone.catch(() => {});
    await registry.flush().catch(() => {});
    // With the leaf gone, drain() would wait for a reconnect forever.
    if (nc && !(await bounded(nc.drain(), 2_000))) await nc.close().catch(() => {});
    await store.close();
  }
}

/** True if `p` settled within `ms`. */
async function bounded(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false))),
  ]);
  clearTimeout(timer);
  return r;
}
