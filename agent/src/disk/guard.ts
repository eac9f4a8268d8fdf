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
 *   - once there is room again (2 × minFreeBytes) after any full episode, restarts the leaf
 *     nats-server, which recovers its store: nothing acked is lost. Also when JetStream stayed up:
 *     measured on 2.15.1, a stream whose block write met ENOSPC ("critical write error") keeps
 *     answering INFO but times out every publish until the server restarts. `full` stays set until
 *     that restart was made.
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
  /** The partition was full since the last leaf restart: restart it once there is room. */
  private restartDue = false;
  /** Restarted, JetStream not seen up since: a slow store recovery is not "down" (no restart loop). */
  private awaitingUp = false;
  /** Called after every check; `changed` when `full` flipped (the agent then reports at once). */
  onState: ((s: DiskState, changed: boolean) => void) | undefined;

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
    if (jsUp) this.awaitingUp = false;
    const low = freeBytes < this.opts.minFreeBytes;
    const roomAgain = freeBytes >= 2 * this.opts.minFreeBytes;
    if (low || (this.downChecks >= 2 && !this.awaitingUp)) this.restartDue = true;
    if (this.restartDue && roomAgain && now - this.lastRestart > this.opts.restartEveryMs) {
      this.restartDue = false;
      this.awaitingUp = true;
      this.lastRestart = now;
      this.log.warn({ freeBytes }, "the data partition has room again: restarting the leaf nats-server to recover its store");
      this.leaf.restart();
    }
    const reason = this.downChecks >= 2 ? (this.awaitingUp ? "recovering" : "jetstream-down") : low ? "low-space" : this.restartDue ? "recovering" : undefined;
    const full = reason !== undefined;
    if (full && !this.state.full) this.log.error({ freeBytes, reason }, "data partition full: new data is refused until there is room");
    if (!full && this.state.full) this.log.info({ freeBytes }, "data partition has room again");
    const changed = full !== this.state.full;
    this.state = { full, freeBytes, totalBytes, ...(reason ? { reason, since: this.state.since ?? now } : {}) };
    this.onState?.(this.state, changed);
    return this.state;
  }
}
