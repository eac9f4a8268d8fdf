import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage, sleep } from "@canopy/protocol";
import { Registry, type DeviceView } from "../registry/devices.js";
import { backlog, type BacklogRow } from "../upstream/backlog.js";
import type { Logger } from "../logging.js";
import type { FleetChange, FleetRow } from "./types.js";

export type { FleetChange, FleetRow };

export function toRow(v: DeviceView, pending: number | null): FleetRow {
  const s = v.status;
  const os = [s?.facts?.os?.distro, s?.facts?.os?.release].filter(Boolean).join(" ");
  const mcus = s?.mcus ?? [];
  return {
    id: v.record.id,
    groups: v.record.groups,
    online: v.online,
    seenAt: s ? s.seenAt : null,
    heartbeatMs: s ? s.heartbeatMs : null,
    os: os || null,
    agentVersion: s?.agent.version ?? null,
    backlog: pending,
    mcus: mcus.length,
    mcusOnline: v.online ? mcus.filter((m) => m.online).length : 0,
    configRevision: s?.config?.revision ?? null,
  };
}

/** How long the feed keeps polling after its last listener left. */
const IDLE_STOP_MS = 15_000;

/** What must change for a row to be re-sent: everything but `seenAt`, which moves on every beat. */
function signature(r: FleetRow): string {
  return JSON.stringify([r.groups, r.online, r.os, r.agentVersion, r.backlog, r.mcus, r.mcusOnline, r.configRevision, Math.floor((r.seenAt ?? 0) / 10_000)]);
}

/**
 * The fleet, re-read once per `intervalMs` (registry + status: two whole-bucket reads however large
 * the fleet) and the backlog every `backlogEveryMs`; subscribers get a snapshot, then only the rows
 * that changed. Presence is time-based (3 missed heartbeats), so polling is needed anyway to notice a
 * device going silent; it runs only while someone listens.
 */
export class FleetFeed {
  private rows = new Map<string, FleetRow>();
  private sigs = new Map<string, string>();
  private backlogs = new Map<string, BacklogRow>();
  private backlogAt = 0;
  private readonly listeners = new Set<(c: FleetChange) => void>();
  private loop: AbortController | undefined;
  private first: Promise<void> | undefined;
  private registry: Promise<Registry> | undefined;
  private inFlight: Promise<void> | undefined;
  private backlogRun: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private refreshedAt = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly intervalMs = 1_000,
    private readonly backlogEveryMs = 5_000,
  ) {}

  /** Current rows; read now (at most once per interval) when nobody keeps the feed running. */
  async current(): Promise<FleetRow[]> {
    if (this.loop) await this.first;
    else if (Date.now() - this.refreshedAt >= this.intervalMs) await this.refresh();
    return [...this.rows.values()];
  }

  backlogOf(id: string): BacklogRow | undefined {
    return this.backlogs.get(id);
  }

  subscribe(fn: (c: FleetChange) => void): () => void {
    this.listeners.add(fn);
    clearTimeout(this.idleTimer);
    if (!this.loop) {
      this.loop = new AbortController();
      // Rows read a moment ago are good enough for the first paint; the loop refreshes them next.
      this.first = Date.now() - this.refreshedAt < 2 * this.intervalMs ? Promise.resolve() : this.refresh();
      void this.run(this.loop.signal);
    }
    void this.first?.then(() => fn({ kind: "snapshot", rows: [...this.rows.values()] }));
    return () => {
      this.listeners.delete(fn);
      // A page reload or a move between pages comes back within moments: keep reading a while.
      if (this.listeners.size === 0) this.idleTimer = setTimeout(() => this.listeners.size === 0 && this.stop(), IDLE_STOP_MS);
    };
  }

  stop(): void {
    clearTimeout(this.idleTimer);
    this.loop?.abort();
    this.loop = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    await this.first;
    while (await sleep(this.intervalMs, signal)) {
      await this.refresh().catch((err) => this.log.warn({ err: errorMessage(err) }, "fleet feed refresh failed"));
    }
  }

  /** One read at a time: concurrent callers (scrape + page) share the one in flight. */
  private refresh(): Promise<void> {
    this.inFlight ??= this.read(Date.now()).finally(() => {
      this.inFlight = undefined;
      this.refreshedAt = Date.now();
    });
    return this.inFlight;
  }

  /**
   * The backlog needs a read per device (its newest message in the shard), so it runs beside the
   * presence reads, not in front of them: rows carry the last backlog known, updated when it lands.
   */
  private startBacklog(now: number): void {
    if (this.backlogRun || now - this.backlogAt < this.backlogEveryMs) return;
    this.backlogAt = now;
    this.backlogRun = backlog(this.nc, now)
      .then((rows) => void (this.backlogs = new Map(rows.map((r) => [r.device, r]))))
      .catch((err) => this.log.debug({ err: errorMessage(err) }, "backlog read failed"))
      .finally(() => (this.backlogRun = undefined));
  }

  /** Resolves when the backlog read in flight (if any) is done: a scrape wants a backlog, not a gap. */
  async backlogSettled(): Promise<void> {
    await this.backlogRun;
  }

  private async read(now: number): Promise<void> {
    this.startBacklog(now);
    this.registry ??= Registry.open(this.nc);
    const views = await (await this.registry.catch((err: unknown) => {
      this.registry = undefined;
      throw err;
    })).view(now);
    const next = new Map<string, FleetRow>();
    const changed: FleetRow[] = [];
    for (const v of views) {
      const row = toRow(v, this.backlogs.get(v.record.id)?.pending ?? null);
      const sig = signature(row);
      next.set(row.id, row);
      if (this.sigs.get(row.id) !== sig) changed.push(row);
      this.sigs.set(row.id, sig);
    }
    const removed = [...this.rows.keys()].filter((id) => !next.has(id));
    for (const id of removed) this.sigs.delete(id);
    this.rows = next;
    if (changed.length === 0 && removed.length === 0) return;
    for (const fn of this.listeners) fn({ kind: "update", rows: changed, removed });
  }
}
