import { existsSync } from "node:fs";

/**
 * The hub's time as seen from a device that may have no trustworthy clock of its own (a Pi has no
 * RTC: after a power cut without network its clock can be hours off). Measured: an agent 1 h behind
 * ran a `--ttl 10s` command that had waited 20 s; 1 h ahead, a `--ttl 30m` command expired at once.
 *
 * A sample is a hub timestamp (the `created` time of a KV entry the agent just wrote) taken between
 * two local monotonic readings; the hub time "now" is that timestamp plus the monotonic time elapsed
 * since the midpoint. The device's wall clock never enters it. Until a sample exists, the system
 * clock is trusted only when systemd-timesyncd says it is synchronized.
 */
export interface ClockSample {
  hubMs: number;
  /** performance.now() at the midpoint of the round trip that produced hubMs. */
  monoMs: number;
  rttMs: number;
}

export class HubClock {
  private sample: ClockSample | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly systemSynced: () => boolean = timesyncdSynchronized,
    private readonly mono: () => number = () => performance.now(),
    private readonly wall: () => number = () => Date.now(),
  ) {}

  /** Feeds one measurement; keeps the one with the smallest round trip among recent ones. */
  observe(hubMs: number, sentMono: number, receivedMono: number): void {
    const rttMs = Math.max(0, receivedMono - sentMono);
    const next = { hubMs, monoMs: sentMono + rttMs / 2, rttMs };
    const cur = this.sample;
    // A fresher sample wins unless it is much noisier than the one we hold (a slow round trip).
    if (!cur || rttMs <= cur.rttMs * 2 + 5 || this.mono() - cur.monoMs > 300_000) this.sample = next;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  get measured(): boolean {
    return this.sample !== undefined;
  }

  /** Resolves true once a hub sample exists, false after `ms` or on abort. */
  async waitForSample(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.sample) return true;
    let done: () => void = () => {};
    const woken = new Promise<void>((resolve) => (done = resolve));
    this.waiters.add(done);
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    await woken;
    clearTimeout(timer);
    this.waiters.delete(done);
    return this.sample !== undefined;
  }

  /** True when `now()` can be trusted for TTL decisions. */
  get synced(): boolean {
    return this.sample !== undefined || this.systemSynced();
  }

  /** Hub time in ms since the epoch when known, else undefined (see `synced`). */
  hubNow(): number | undefined {
    if (this.sample) return Math.round(this.sample.hubMs + (this.mono() - this.sample.monoMs));
    return this.systemSynced() ? this.wall() : undefined;
  }

  /** Best estimate for timestamps in reports: hub time when known, else the device clock. */
  now(): number {
    return this.hubNow() ?? this.wall();
  }

  /** Device clock minus hub clock (ms), when measured: what `canopy doctor` calls clock skew. */
  get skewMs(): number | undefined {
    const s = this.sample;
    return s ? Math.round(this.wall() - (s.hubMs + (this.mono() - s.monoMs))) : undefined;
  }

  get lastRttMs(): number | undefined {
    return this.sample?.rttMs;
  }
}

/** systemd-timesyncd creates this file once the system clock is synchronized (systemd ≥ 239). */
function timesyncdSynchronized(): boolean {
  return existsSync("/run/systemd/timesync/synchronized");
}
