import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";
import { Assets, isValidId } from "@canopy/protocol";
import { lastSeen } from "./beats.js";

/** What the hub knows of one device, as a live query needs it. */
export interface PresenceRecord {
  id: string;
  groups: string[];
  /** Hub receive time of the last status record or compact beat, the newer; undefined = never reported. */
  seenAt: number | undefined;
  /** Parsed status record (undefined = none, or not an object). */
  status: Record<string, unknown> | undefined;
}

interface Parsed<T> {
  revision: number;
  value: T | undefined;
}

/**
 * The registry (KV `devices`) and presence (KV `status`, and the compact beats in KV `beat`) of the
 * whole fleet, held in memory and kept current by three watchers, so a long-lived process (the gateway, the console's API, a bench) answers
 * "who is addressed, who is online" without reading 2 × N records per query. Each record is parsed
 * once per revision, when first asked for. Costs what changes: a heartbeat updates one map entry.
 */
export class PresenceView {
  private static readonly views = new WeakMap<NatsConnection, Promise<PresenceView>>();
  private readonly entries = { devices: new Map<string, KvEntry>(), status: new Map<string, KvEntry>(), beat: new Map<string, KvEntry>() };
  private readonly parsedDevices = new Map<string, Parsed<{ id: string; groups: string[] }>>();
  private readonly parsedStatus = new Map<string, Parsed<Record<string, unknown>>>();
  private readonly watchers: Array<QueuedIterator<KvEntry>> = [];
  private stopped = false;

  private constructor() {}

  /**
   * The view for this connection: started on first use (resolves once both buckets were read
   * through), shared afterwards, stopped when the connection closes.
   */
  static for(nc: NatsConnection): Promise<PresenceView> {
    let v = PresenceView.views.get(nc);
    if (!v) {
      v = PresenceView.start(nc);
      PresenceView.views.set(nc, v);
      v.catch(() => PresenceView.views.delete(nc));
    }
    return v;
  }

  private static async start(nc: NatsConnection): Promise<PresenceView> {
    const view = new PresenceView();
    const kvm = new Kvm(nc);
    const [devices, status, beat] = await Promise.all([kvm.open(Assets.kvDevices), kvm.open(Assets.kvStatus), kvm.open(Assets.kvBeat)]);
    try {
      await Promise.all([
        view.follow(devices, view.entries.devices),
        view.follow(status, view.entries.status),
        // A hub provisioned before KV `beat` existed: presence rests on `status` alone.
        view.follow(beat, view.entries.beat).catch(() => {}),
      ]);
    } catch (err) {
      view.stop();
      throw err;
    }
    void nc.closed().then(() => view.stop());
    return view;
  }

  /**
   * Resolves once the bucket's current content is in `into`. The stopping rule is readBucket's (see
   * kv/read.ts): keys rewritten during the first pass arrive after the first "0 pending", so the view
   * is ready only at a revision ≥ the stream's last sequence taken at that point.
   */
  private async follow(kv: KV, into: Map<string, KvEntry>): Promise<void> {
    const empty = (await kv.status()).values === 0;
    const iter = await kv.watch();
    this.watchers.push(iter);
    let ready: (() => void) | undefined;
    const loaded = new Promise<void>((resolve) => (ready = resolve));
    if (empty) ready?.();
    let until = Number.POSITIVE_INFINITY;
    void (async () => {
      for await (const e of iter) {
        if (e.operation === "PUT") into.set(e.key, e);
        else {
          into.delete(e.key);
          this.parsedDevices.delete(e.key);
          this.parsedStatus.delete(e.key);
        }
        if (ready === undefined) continue;
        if (e.delta === 0 && until === Number.POSITIVE_INFINITY) until = (await kv.status()).streamInfo.state.last_seq;
        if (e.revision >= until) {
          ready();
          ready = undefined;
        }
      }
      ready?.();
    })().catch(() => ready?.());
    await loaded;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.watchers) w.stop();
  }

  /** Enrolled devices, optionally one device or one group's members, sorted by id. */
  list(target: { group?: string | undefined; device?: string | undefined } = {}): PresenceRecord[] {
    const out: PresenceRecord[] = [];
    const add = (e: KvEntry): void => {
      const rec = this.device(e);
      if (!rec || (target.group && !rec.groups.includes(target.group))) return;
      const st = this.entries.status.get(rec.id);
      out.push({ ...rec, seenAt: lastSeen(st, this.entries.beat.get(rec.id)), status: st ? this.status(st) : undefined });
    };
    if (target.device !== undefined) {
      const e = this.entries.devices.get(target.device);
      if (e) add(e);
    } else for (const e of this.entries.devices.values()) add(e);
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private device(e: KvEntry): { id: string; groups: string[] } | undefined {
    return parsedOnce(this.parsedDevices, e, (v) => {
      if (!isValidId(v.id) || v.id !== e.key) return undefined;
      return { id: v.id, groups: Array.isArray(v.groups) ? v.groups.filter(isValidId) : [] };
    });
  }

  private status(e: KvEntry): Record<string, unknown> | undefined {
    return parsedOnce(this.parsedStatus, e, (v) => v);
  }
}

function parsedOnce<T>(cache: Map<string, Parsed<T>>, e: KvEntry, shape: (v: Record<string, unknown>) => T | undefined): T | undefined {
  const hit = cache.get(e.key);
  if (hit && hit.revision === e.revision) return hit.value;
  let value: T | undefined;
  try {
    const v = e.json<unknown>();
    value = v !== null && typeof v === "object" && !Array.isArray(v) ? shape(v as Record<string, unknown>) : undefined;
  } catch {
    value = undefined;
  }
  cache.set(e.key, { revision: e.revision, value });
  return value;
}
