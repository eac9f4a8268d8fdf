import { statfs } from "node:fs/promises";
import type { JetStreamManager } from "@nats-io/jetstream";
import { errorMessage, sleep, type ServerSupervisor } from "@canopy/protocol";
import type { Logger } from "../logging.js";

/**
 * A full data partition, survived. Measured on nats-server 2.15.1: a JetStream write that meets
 * ENOSPC shuts JetStream down on that server ("JetStream out of space, will be DISABLED") and it
 * stays down until the server restarts; everything acked before is on disk. So the guard:
 *   - reports `disk.full` in the status record while free space is below `minFreeBytes` or the
 *     leaf's JetStream is down, so `canopy devices` / `doctor` / `backlog` show it;
 *   - keeps the agent running (publishers meanwhile get JetStream errors, the bridge NAKs);
 *   - once there is room again (2 × minFreeBytes) and JetStream is still down, restarts the leaf
 *     nats-server, which recovers its store: nothing acked is lost.
 */
export interface DiskState {
  full: boolean;
  freeBytes: number;
  totalBytes: number;
  /** Why it is full: "low-space" or "jetstream-down". */
  reason?: string;
  since?: number;
}

export class DiskGuard {
  private state: DiskState = { full: false, freeBytes: 0, totalBytes: 0 };
  private lastRestart = 0;
  /** Consecutive checks that found JetStream down: one slow answer on a busy device is not "down". */
  private downChecks = 0;

  constructor(
    private readonly dir: string,
    private readonly jsm: JetStreamManager,
    private readonly leaf: ServerSupervisor,
    private readonly log: Logger,
    private readonly opts = { minFreeBytes: 2 * 2 ** 20, intervalMs: 2_000, restartEveryMs: 10_000 },
  ) {}

  get current(): DiskState {
    return this.state;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.check().catch((err) => this.log.debug({ err: errorMessage(err) }, "disk check failed"));
      if (!(await sleep(this.opts.intervalMs, signal))) return;
    }
  }

  async check(now = Date.now()): Promise<DiskState> {
    const s = await statfs(this.dir);
    const freeBytes = Number(s.bavail) * Number(s.bsize);
    const totalBytes = Number(s.blocks) * Number(s.bsize);
    const jsUp = await this.jsm.getAccountInfo().then(() => true, () => false);
    this.downChecks = jsUp ? 0 : this.downChecks + 1;
    const low = freeBytes < this.opts.minFreeBytes;
    const reason = this.downChecks >= 2 ? "jetstream-down" : low ? "low-space" : undefined;
    const full = reason !== undefined;
    if (full && !this.state.full) this.log.error({ freeBytes, reason }, "data partition full: new data is refused until there is room");
    if (!full && this.state.full) this.log.info({ freeBytes }, "data partition has room again");
    this.state = { full, freeBytes, totalBytes, ...(reason ? { reason, since: this.state.since ?? now } : {}) };
    if (this.downChecks >= 3 && freeBytes >= 2 * this.opts.minFreeBytes && now - this.lastRestart > this.opts.restartEveryMs) {
      this.lastRestart = now;
      this.log.warn({ freeBytes }, "leaf JetStream is down and the disk has room: restarting the leaf nats-server");
      this.leaf.restart();
    }
    return this.state;
  }
}
