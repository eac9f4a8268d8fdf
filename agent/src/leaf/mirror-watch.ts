import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { Subjects, errorMessage, sleep, type ServerSupervisor } from "@canopy/protocol";
import type { Logger } from "../logging.js";

/**
 * Gets the device's mirrors of hub streams (config KV, `CMD`) going again after a link outage.
 *
 * Measured on nats-server 2.15.1: a leaf's mirror asks the hub for its consumer and waits 30 s for
 * the answer. A request made while the link is down goes nowhere, so it waits the full 30 s; the
 * retry the server makes when the leaf link comes back is skipped while that request is pending, and
 * each failure adds 10 s of backoff (up to 2 min). A device back from a 40 s outage got its config
 * 22 s later; commands wait the same way. Restarting the leaf nats-server sets every mirror up at
 * once (measured: caught up 1 s after the restart), and nothing is lost: the stores are on disk and
 * the mirrors resume from their last sequence.
 *
 * So: when a mirror has had no contact (a healthy one gets a heartbeat every second) for `staleMs`
 * while the hub has answered this device for `graceMs` (the server's own retry had its chance), the
 * leaf is restarted — at most once per `cooldownMs`, doubling while it does not help.
 */
export interface MirrorWatchOptions {
  intervalMs: number;
  staleMs: number;
  graceMs: number;
  cooldownMs: number;
  maxCooldownMs: number;
  probeTimeoutMs: number;
}

export const MIRROR_WATCH_DEFAULTS: MirrorWatchOptions = {
  intervalMs: 2_000,
  staleMs: 6_000,
  graceMs: 3_000,
  cooldownMs: 30_000,
  maxCooldownMs: 600_000,
  probeTimeoutMs: 2_000,
};

export type MirrorCheck = "healthy" | "link-down" | "waiting" | "restarted" | "cooling-down" | "held";

export class MirrorWatch {
  private reachableSince: number | undefined;
  private lastRestart = -Infinity;
  private cooldownMs: number;
  private healthySinceRestart = true;
  /** Leaf restarts this watch made (status and tests). */
  restarts = 0;

  constructor(
    private readonly device: string,
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly leaf: Pick<ServerSupervisor, "restart">,
    private readonly log: Logger,
    private readonly opts: MirrorWatchOptions = MIRROR_WATCH_DEFAULTS,
    /** True while a restart cannot help (a full data partition: the mirrors cannot store anyway). */
    private readonly hold: () => boolean = () => false,
  ) {
    this.cooldownMs = opts.cooldownMs;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.check().catch((err) => this.log.debug({ err: errorMessage(err) }, "mirror check failed"));
      if (!(await sleep(this.opts.intervalMs, signal))) return;
    }
  }

  async check(now = Date.now()): Promise<MirrorCheck> {
    if (this.hold()) {
      this.reachableSince = undefined;
      return "held";
    }
    const stalled = await this.stalledMirrors();
    if (stalled.length === 0) {
      this.reachableSince = undefined;
      this.cooldownMs = this.opts.cooldownMs;
      this.healthySinceRestart = true;
      return "healthy";
    }
    if (!(await this.hubAnswers())) {
      this.reachableSince = undefined;
      return "link-down";
    }
    this.reachableSince ??= now;
    if (now - this.reachableSince < this.opts.graceMs) return "waiting";
    if (now - this.lastRestart < this.cooldownMs) return "cooling-down";
    // The previous restart did not help (no healthy check since): wait longer before the next one.
    if (this.restarts > 0 && !this.healthySinceRestart) this.cooldownMs = Math.min(this.cooldownMs * 2, this.opts.maxCooldownMs);
    this.healthySinceRestart = false;
    this.lastRestart = now;
    this.reachableSince = undefined;
    this.restarts++;
    this.log.warn({ stalled }, "mirrors of hub streams stalled although the hub answers: restarting the leaf nats-server");
    this.leaf.restart();
    return "restarted";
  }

  /** Mirror streams on the leaf with no contact for `staleMs` ("name (Ns)" for the log). */
  private async stalledMirrors(): Promise<string[]> {
    const out: string[] = [];
    for await (const si of this.jsm.streams.list()) {
      const active = si.mirror?.active;
      if (active === undefined) continue;
      const ms = active < 0 ? Infinity : active / 1e6;
      if (ms > this.opts.staleMs) out.push(`${si.config.name} (${Number.isFinite(ms) ? `${Math.round(ms / 1000)}s` : "never"})`);
    }
    return out;
  }

  /** The device's own status record answers through the link: the hub's JetStream is reachable. */
  private async hubAnswers(): Promise<boolean> {
    try {
      await this.nc.request(Subjects.statusGet(this.device), "", { timeout: this.opts.probeTimeoutMs });
      return true;
    } catch {
      return false;
    }
  }
}
