import type { DeviceBeat, DeviceStatus } from "@canopy/protocol";

/** A gauge-only change (load, free memory, an MCU's last-seen) is written at most this often. */
export const GAUGE_REFRESH_MS = 60_000;
/** The full record is rewritten at least this often even when nothing changed. */
export const FULL_REFRESH_MS = 10 * 60_000;

export interface StatusSignature {
  /** Everything a reader acts on: any change is written at once. */
  content: string;
  /** Values that move all the time and nobody acts on within seconds. */
  gauges: string;
}

/**
 * Splits a status record into what must reach the hub at once and what may wait. `at` and `up` are
 * left out of both: liveness and the UP backlog travel in every compact beat (`DeviceBeat`).
 * The clock skew counts as content to the second (the clock test and TTLs read it), not its jitter.
 */
export function signature(s: DeviceStatus): StatusSignature {
  const { at: _at, up: _up, facts, mcus, storage, clock, ...rest } = s;
  const f = facts;
  const content = {
    ...rest,
    facts: f && { os: f.os, cpu: { model: f.cpu.model, cores: f.cpu.cores }, mem: f.mem.total, disk: f.disk.total, net: f.net },
    mcus: mcus?.map(({ lastSeen: _l, ...m }) => m),
    storage: storage && { full: storage.full, totalBytes: storage.totalBytes, reason: storage.reason, since: storage.since },
    clock: clock && Math.round(clock.skewMs / 1_000),
  };
  const gauges = {
    facts: f && [f.cpu.load, f.cpu.temperature, f.mem.available, f.mem.used, f.disk.available, f.disk.used, f.uptime],
    mcus: mcus?.map((m) => m.lastSeen),
    free: storage?.freeBytes,
    clock: clock && [clock.skewMs, clock.rttMs],
  };
  return { content: JSON.stringify(content), gauges: JSON.stringify(gauges) };
}

/** The compact beat for a status record. */
export function beatOf(s: DeviceStatus): DeviceBeat {
  return { at: s.at, heartbeatMs: s.heartbeatMs, ...(s.up ? { up: s.up } : {}) };
}

/**
 * Decides, per heartbeat, between the full status record and a compact beat: full when the content
 * changed (or it was never written), when only gauges changed and the last full record is older than
 * `gaugeRefreshMs`, and every `fullRefreshMs` regardless.
 */
export class CompactPolicy {
  private last: StatusSignature | undefined;
  private fullAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly gaugeRefreshMs = GAUGE_REFRESH_MS,
    private readonly fullRefreshMs = FULL_REFRESH_MS,
  ) {}

  full(sig: StatusSignature, now: number): boolean {
    const last = this.last;
    if (!last || last.content !== sig.content) return true;
    const age = now - this.fullAt;
    return age >= this.fullRefreshMs || (last.gauges !== sig.gauges && age >= this.gaugeRefreshMs);
  }

  wroteFull(sig: StatusSignature, now: number): void {
    this.last = sig;
    this.fullAt = now;
  }

  /** Forget what was written: the next report is a full record. */
  reset(): void {
    this.last = undefined;
  }
}
