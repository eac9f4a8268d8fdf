import type { NatsConnection } from "@nats-io/transport-node";
import type { Database } from "lmdb";
import { Backoff, DeviceRecord, Subjects, errorMessage, isValidId, sleep } from "@canopy/protocol";
import type { Logger } from "../logging.js";

/** LMDB `meta` key holding the last groups read from the registry. */
export const GROUPS_META_KEY = "query.groups";

/**
 * The device's groups, from its registry record in hub KV `devices` (a direct get of its own key
 * through the hub's JetStream domain: the one read its credentials allow there), cached in LMDB so a device that boots without the hub
 * still answers its group queries. Calls `onChange` when the groups change. The record is re-read when
 * the writer's notice (`reg.<dev>`) arrives, and otherwise once a minute: a notice is a core message,
 * lost while the link is down, and credentials minted before notices existed do not receive them.
 * (Polling every 10 s cost the hub one read per device per 10 s: 1,000/s at 10,000 devices.)
 */
export class GroupTracker {
  private groups: string[];
  private readonly backoff = new Backoff({ initialMs: 1_000, maxMs: 30_000 });
  private failing = false;

  constructor(
    private readonly device: string,
    private readonly nc: NatsConnection,
    private readonly meta: Database<unknown, string>,
    private readonly log: Logger,
    private readonly onChange: (groups: string[]) => Promise<void>,
    private readonly intervalMs = 60_000,
  ) {
    this.groups = loadGroups(meta);
  }

  private wake: (() => void) | undefined;
  private noticed = false;

  get current(): string[] {
    return this.groups;
  }

  async run(signal: AbortSignal): Promise<void> {
    const notices = this.nc.subscribe(Subjects.registryNotice(this.device), {
      callback: () => {
        this.noticed = true;
        this.wake?.();
      },
    });
    signal.addEventListener("abort", () => notices.unsubscribe(), { once: true });
    while (!signal.aborted) {
      this.noticed = false;
      let wait = this.intervalMs;
      try {
        await this.refresh();
        if (this.failing) this.log.info({ groups: this.groups }, "registry reachable: groups refreshed");
        this.failing = false;
        this.backoff.reset();
      } catch (err) {
        if (signal.aborted) break;
        wait = Math.min(this.backoff.next(), this.intervalMs);
        if (!this.failing) this.log.warn({ err: errorMessage(err), groups: this.groups }, "cannot read registry record; keeping cached groups");
        this.failing = true;
      }
      if (this.noticed) continue; // a notice arrived while reading: read again
      const woken = new Promise<boolean>((resolve) => (this.wake = () => resolve(true)));
      const slept = await Promise.race([sleep(wait, signal), woken]);
      this.wake = undefined;
      if (!slept) break;
    }
  }

  async refresh(): Promise<void> {
    const m = await this.nc.request(Subjects.registryGet(this.device), "", { timeout: 4_000 });
    // 404: removed from the registry (or never enrolled): no groups, so no group queries reach it.
    const status = m.headers?.code ?? 0;
    if (status !== 0 && status !== 404) throw new Error(`registry read failed: ${status} ${m.headers?.description ?? ""}`);
    const op = m.headers?.get("KV-Operation");
    let next: string[] = [];
    if (status === 0 && m.data.length > 0 && op !== "DEL" && op !== "PURGE") {
      const parsed = DeviceRecord.safeParse(m.json());
      if (!parsed.success) throw new Error(`registry record of ${this.device} is malformed`);
      next = [...new Set(parsed.data.groups)].sort();
    }
    if (sameGroups(next, this.groups)) return;
    this.log.info({ from: this.groups, to: next }, "groups changed");
    this.groups = next;
    await this.meta.put(GROUPS_META_KEY, next);
    await this.onChange(next);
  }
}

export function loadGroups(meta: Database<unknown, string>): string[] {
  const v = meta.get(GROUPS_META_KEY);
  return Array.isArray(v) ? v.filter(isValidId).sort() : [];
}

function sameGroups(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((g, i) => g === b[i]);
}
