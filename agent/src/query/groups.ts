import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { Database } from "lmdb";
import { Assets, Backoff, DeviceRecord, HUB_DOMAIN, errorMessage, isValidId, sleep } from "@canopy/protocol";
import type { Logger } from "../logging.js";

/** LMDB `meta` key holding the last groups read from the registry. */
export const GROUPS_META_KEY = "query.groups";

/**
 * The device's groups, from its registry record in hub KV `devices` (read through the hub domain, the
 * one API prefix that crosses the leaf link), cached in LMDB so a device that boots without the hub
 * still answers its group queries. Polls the record and calls `onChange` when the groups change.
 */
export class GroupTracker {
  private groups: string[];
  private kv: KV | undefined;
  private readonly backoff = new Backoff({ initialMs: 1_000, maxMs: 30_000 });
  private failing = false;

  constructor(
    private readonly device: string,
    private readonly nc: NatsConnection,
    private readonly meta: Database<unknown, string>,
    private readonly log: Logger,
    private readonly onChange: (groups: string[]) => Promise<void>,
    private readonly intervalMs = 10_000,
  ) {
    this.groups = loadGroups(meta);
  }

  get current(): string[] {
    return this.groups;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
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
      if (!(await sleep(wait, signal))) break;
    }
  }

  async refresh(): Promise<void> {
    this.kv ??= await new Kvm(jetstream(this.nc, { domain: HUB_DOMAIN, timeout: 4_000 })).open(Assets.kvDevices);
    const e = await this.kv.get(this.device);
    // Removed from the registry (or never enrolled): no groups, so no group queries reach it.
    let next: string[] = [];
    if (e && e.operation === "PUT") {
      const parsed = DeviceRecord.safeParse(e.json());
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
