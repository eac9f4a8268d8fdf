import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { Backoff, Subjects, errorMessage, sleep, type DeviceStatus } from "@canopy/protocol";
import type { Logger } from "../logging.js";
import type { HubClock } from "../clock/hub-clock.js";
import { CompactPolicy, beatOf, signature } from "./compact.js";

/** How often the hub clock is re-measured (one extra KV read). */
const CLOCK_SYNC_MS = 30_000;
/** After a beat the hub did not take (a hub without KV `beat`, credentials minted before it): full records only, this long. */
const BEATS_OFF_MS = 2 * 60_000;

/** A part of the agent that adds to the status record (backlog, applied config, MCUs, ...). */
export type StatusContributor = () => Promise<Partial<DeviceStatus>> | Partial<DeviceStatus>;

export interface ReporterOptions {
  device: string;
  intervalMs: number;
  base: () => Omit<DeviceStatus, "at" | "heartbeatMs" | "state">;
  contributors: StatusContributor[];
  /** Measured against the status entry's hub timestamp after a put. */
  clock?: HubClock;
}

/**
 * Presence: writes the device's full status record to hub KV `status` when its content changed (see
 * compact.ts), and otherwise a compact beat to KV `beat`, each as a JetStream publish to its own key
 * (`$KV.status.<dev>`, `$KV.beat.<dev>`; no bucket lookup, which its credentials do not allow). While
 * the hub is unreachable it retries with jittered backoff and logs once per attempt, i.e. once per backoff step.
 */
export class PresenceReporter {
  private js: JetStreamClient | undefined;
  private wake: (() => void) | undefined;
  private readonly backoff = new Backoff({ initialMs: 1_000, maxMs: 15_000 });
  private reachable: boolean | undefined;
  /** A contributor may set `heartbeatMs` (remote config `heartbeat.interval`): it then paces the loop. */
  private intervalMs: number;
  private again = false;
  private clockSyncedAt = -Infinity;
  private readonly policy = new CompactPolicy();
  private beatsOffUntil = -Infinity;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: ReporterOptions,
    private readonly log: Logger,
  ) {
    this.intervalMs = opts.intervalMs;
  }

  get hubReachable(): boolean {
    return this.reachable === true;
  }

  /** Report now instead of at the next heartbeat (after applying config, an MCU came online, ...). */
  reportNow(): void {
    // Asked while a report is in flight: that report may predate the change, so go again at once.
    if (this.wake) this.wake();
    else this.again = true;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.report("online");
        if (this.reachable !== true) this.log.info("hub reachable: presence reported");
        this.reachable = true;
        this.backoff.reset();
        await this.idle(this.intervalMs, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.reachable = false;
        // The hub may have lost or missed the last full record: send one once it is back.
        this.policy.reset();
        const retryInMs = this.backoff.next();
        this.log.warn({ err: errorMessage(err), attempt: this.backoff.attempts, retryInMs }, "hub unreachable; will retry");
        await this.idle(retryInMs, signal);
      }
    }
  }

  /** Best effort on shutdown: mark the device as signed off so it shows offline at once. */
  async signOff(): Promise<void> {
    if (!this.reachable) return;
    await Promise.race([this.report("stopping").catch(() => {}), sleep(1_500)]);
  }

  private async report(state: DeviceStatus["state"]): Promise<void> {
    this.js ??= jetstream(this.nc, { timeout: 4_000 });
    const parts = await Promise.all(this.opts.contributors.map(async (c) => c()));
    const merged = Object.assign({}, ...parts) as Partial<DeviceStatus>;
    this.intervalMs = merged.heartbeatMs !== undefined && merged.heartbeatMs > 0 ? merged.heartbeatMs : this.opts.intervalMs;
    const status: DeviceStatus = {
      ...this.opts.base(),
      ...merged,
      at: this.opts.clock?.now() ?? Date.now(),
      heartbeatMs: this.intervalMs,
      state,
    };
    const sent = performance.now();
    const probe = await this.put(status, state, sent);
    // The hub stamped the entry between our send and its ack: that round trip bounds the sample.
    const acked = performance.now();
    const clock = this.opts.clock;
    if (clock && (sent - this.clockSyncedAt > CLOCK_SYNC_MS || !clock.measured)) {
      // The stored entry's Nats-Time-Stamp is the hub's clock when it stored the put: one sample of
      // hub time (a direct get of the device's own status key, allowed by its credentials).
      const m = await this.nc.request(probe, "", { timeout: 4_000 });
      const stamp = m.headers?.get("Nats-Time-Stamp");
      const hubMs = stamp ? Date.parse(stamp) : NaN;
      if (Number.isFinite(hubMs)) {
        clock.observe(hubMs, sent, acked);
        this.clockSyncedAt = sent;
      }
    }
  }

  /** Writes the full record or a compact beat; returns the direct-get subject of what it wrote. */
  private async put(status: DeviceStatus, state: DeviceStatus["state"], now: number): Promise<string> {
    const js = this.js as JetStreamClient;
    const sig = signature(status);
    const device = this.opts.device;
    if (state === "online" && now >= this.beatsOffUntil && !this.policy.full(sig, now)) {
      try {
        await js.publish(Subjects.beatPut(device), JSON.stringify(beatOf(status)));
        return Subjects.beatGet(device);
      } catch (err) {
        // Unreachable hub or a beat it refuses: the full record below tells which.
        await js.publish(Subjects.statusPut(device), JSON.stringify(status));
        this.beatsOffUntil = now + BEATS_OFF_MS;
        this.log.warn({ err: errorMessage(err), forMs: BEATS_OFF_MS }, "compact heartbeat refused; writing full status records");
        this.policy.wroteFull(sig, now);
        return Subjects.statusGet(device);
      }
    }
    await js.publish(Subjects.statusPut(device), JSON.stringify(status));
    this.policy.wroteFull(sig, now);
    return Subjects.statusGet(device);
  }

  private async idle(ms: number, signal: AbortSignal): Promise<void> {
    if (this.again) {
      this.again = false;
      return;
    }
    const woken = new Promise<void>((resolve) => (this.wake = resolve));
    await Promise.race([sleep(ms, signal), woken]);
    this.wake = undefined;
  }
}
