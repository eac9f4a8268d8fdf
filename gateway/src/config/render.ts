import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import {
  Assets,
  CanopyError,
  ErrorCode,
  RenderedConfig,
  checkId,
  type ConfigValue,
  type DeviceRecord,
  type RenderedConfig as RenderedConfigT,
} from "@canopy/protocol";
import { ConfigLayers, type LayerSnapshot } from "./layers.js";
import { FleetView } from "./fleet.js";
import { RolloutStore } from "./rollouts.js";
import { releasedDevices, type Rollout } from "./rollout-model.js";
import { isCasConflict, mapLimit, readAll, stableJson } from "../kv/read.js";
import { BATCH_NOT_ENABLED, BatchError, publishAtomic, type AtomicMessage } from "@canopy/protocol/nats/batch";

/** A live rollout's value stands in for its group layer on the devices of its released waves. */
export interface Overlay {
  group: string;
  key: string;
  value: ConfigValue;
  devices: ReadonlySet<string>;
}

export function overlaysOf(rollouts: readonly Rollout[]): Overlay[] {
  return rollouts
    .filter((r) => r.state === "running" || r.state === "finalizing")
    .map((r) => ({ group: r.group, key: r.key, value: r.value, devices: new Set(releasedDevices(r)) }));
}

/**
 * A device's effective config: device layer > group layers > fleet. A device in several groups that
 * set the same key takes the value of the group listed first in its registry record.
 */
export function effectiveConfig(record: DeviceRecord, snap: LayerSnapshot, overlays: readonly Overlay[], keys?: readonly string[]): Map<string, RenderedConfigT> {
  const out = new Map<string, RenderedConfigT>();
  const want = (k: string): boolean => !keys || keys.includes(k);
  for (const [k, value] of snap.fleet) if (want(k)) out.set(k, { value, source: "fleet" });
  for (const g of [...record.groups].reverse()) {
    const layer = new Map(snap.groups.get(g) ?? []);
    for (const o of overlays) if (o.group === g && o.devices.has(record.id)) layer.set(o.key, o.value);
    for (const [k, value] of layer) if (want(k)) out.set(k, { value, source: `group:${g}` });
  }
  for (const [k, value] of snap.devices.get(record.id) ?? []) if (want(k)) out.set(k, { value, source: `device:${record.id}` });
  return out;
}

export interface RenderResult {
  devices: number;
  written: number;
  removed: number;
}

const MAX_PASSES = 8;
/** Up to this many devices, their entries are read with a get per key rather than a pass per key. */
const FEW_DEVICES = 16;
/** Writes per atomic batch (the server takes up to 1,000), and the fewest worth a batch's commit. */
const BATCH_OPS = 500;
const MIN_BATCH_OPS = 8;

interface WriteOp {
  key: string;
  /** Absent for a removal. */
  data?: string;
  remove?: true;
  /** The entry's revision the write expects (0: no entry yet). */
  revision: number;
}

interface DevicePlan {
  device: string;
  ops: WriteOp[];
}

/**
 * Renders authored layers into hub KV `cfg` (`<dev>.<key>`). Idempotent: a key whose rendered value
 * did not change is not written, so devices see a new revision only for a real change. Every write is
 * a compare-and-set against the entry read *before* the layers were read, so two renderers racing
 * (CLI and gateway, two gateways) cannot leave an older view behind: the loser re-reads and retries.
 */
export class Renderer {
  /** False once the stream refused atomic batches (a hub not yet provisioned for them). */
  private atomic = true;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cfg: KV,
    private readonly layers: ConfigLayers,
    private readonly fleet: FleetView,
    private readonly rollouts: RolloutStore,
  ) {}

  static async open(nc: NatsConnection): Promise<Renderer> {
    return new Renderer(
      nc,
      await new Kvm(nc).open(Assets.kvConfig),
      await ConfigLayers.open(nc),
      await FleetView.open(nc),
      await RolloutStore.open(nc),
    );
  }

  /** Renders the given devices (all enrolled when omitted), for `keys` only when given. */
  async render(opts: { devices?: readonly string[]; keys?: readonly string[] } = {}): Promise<RenderResult> {
    const total: RenderResult = { devices: 0, written: 0, removed: 0 };
    let pending = opts.devices ? [...new Set(opts.devices.map((d) => checkId(d, "device id")))] : undefined;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      // The rendered entries before the layers (see the class comment); the reads on each side of
      // that line are independent and go out together.
      const [records, current] = await this.recordsAndCurrent(pending, opts.keys);
      const [snap, rollouts] = await Promise.all([this.layers.snapshot(opts.keys), this.rollouts.list()]);
      const overlays = overlaysOf(rollouts);
      const plans = records.map((r, i) => this.plan(r.id, effectiveConfig(r, snap, overlays, opts.keys), current[i] ?? new Map(), opts.keys));
      const conflicts = await this.apply(plans);
      for (const p of plans) {
        if (conflicts.has(p.device)) continue;
        total.written += p.ops.filter((o) => !o.remove).length;
        total.removed += p.ops.filter((o) => o.remove).length;
      }
      if (pass === 0) total.devices = records.length;
      if (conflicts.size === 0) return total;
      pending = [...conflicts];
    }
    throw new CanopyError(ErrorCode.Conflict, `rendering kept racing with other writers for: ${(pending ?? []).join(", ")}`);
  }

  /** Registry records and their rendered entries; read side by side when the entries are read by key. */
  private async recordsAndCurrent(pending: string[] | undefined, keys?: readonly string[]): Promise<[DeviceRecord[], Array<Map<string, KvEntry>>]> {
    if (keys && (!pending || pending.length > FEW_DEVICES)) {
      const [records, byDevice] = await Promise.all([this.fleet.records(pending), this.currentByKey(keys)]);
      return [records, records.map((r) => byDevice.get(r.id) ?? new Map())];
    }
    const records = await this.fleet.records(pending);
    return [records, await mapLimit(records, 64, (r) => this.current(r.id, keys))];
  }

  /** What one device needs written: each changed key (compare-and-set) and each key to remove. */
  private plan(device: string, desired: Map<string, RenderedConfigT>, current: Map<string, KvEntry>, keys?: readonly string[]): DevicePlan {
    const ops: WriteOp[] = [];
    for (const [key, want] of desired) {
      const e = current.get(key);
      const live = e && e.operation === "PUT" ? e : undefined;
      if (live && sameRendered(live, want)) continue;
      ops.push({ key, data: JSON.stringify(want), revision: live?.revision ?? 0 });
    }
    for (const [key, e] of current) {
      if (desired.has(key) || e.operation !== "PUT" || (keys && !keys.includes(key))) continue;
      ops.push({ key, remove: true, revision: e.revision });
    }
    return { device, ops };
  }

  /**
   * Writes the plans; returns the devices whose compare-and-set lost (to re-render). Many writes go as
   * atomic batches: one commit and one ack for up to BATCH_OPS writes instead of a round trip each.
   * Measured with a scratch script on a real hub (200 keys, 200 watchers in one process, load ~3):
   * all seen 29 ms after the start against 38–46 ms pipelined; with no watchers 8.7 against 16 ms. A batch is all or nothing, so a batch that
   * fails (a lost compare-and-set anywhere in it, a key whose last entry is a delete marker, a timeout:
   * then some of it may have landed and the compare-and-set below sees it) is redone key by key.
   */
  private async apply(plans: readonly DevicePlan[]): Promise<Set<string>> {
    const conflicts = new Set<string>();
    const busy = plans.filter((p) => p.ops.length > 0);
    const byKey = async (group: readonly DevicePlan[]): Promise<void> => {
      await mapLimit(group, 64, async (p) => {
        if ((await this.writeByKey(p)) === "conflict") conflicts.add(p.device);
      });
    };
    const ops = busy.reduce((n, p) => n + p.ops.length, 0);
    if (!this.atomic || ops < MIN_BATCH_OPS) {
      await byKey(busy);
      return conflicts;
    }
    const chunks: DevicePlan[][] = [];
    let chunk: DevicePlan[] = [];
    let size = 0;
    for (const p of busy) {
      if (size + p.ops.length > BATCH_OPS && chunk.length > 0) {
        chunks.push(chunk);
        chunk = [];
        size = 0;
      }
      chunk.push(p);
      size += p.ops.length;
    }
    chunks.push(chunk);
    await mapLimit(chunks, 4, async (c) => {
      const msgs = c.flatMap((p) => p.ops.map((o) => this.message(p.device, o)));
      try {
        await publishAtomic(this.nc, msgs);
      } catch (err) {
        if (err instanceof BatchError && err.code === BATCH_NOT_ENABLED) this.atomic = false;
        await byKey(c);
      }
    });
    return conflicts;
  }

  private message(device: string, o: WriteOp): AtomicMessage {
    const headers: Record<string, string> = { "Nats-Expected-Last-Subject-Sequence": String(o.revision) };
    if (o.remove) headers["KV-Operation"] = "DEL";
    return { subject: `$KV.${Assets.kvConfig}.${device}.${o.key}`, data: o.data ?? "", headers };
  }

  /** One device's writes, a compare-and-set each; a create also takes the place of a delete marker. */
  private async writeByKey(p: DevicePlan): Promise<"ok" | "conflict"> {
    try {
      for (const o of p.ops) {
        const k = `${p.device}.${o.key}`;
        if (o.remove) await this.cfg.delete(k, { previousSeq: o.revision });
        else if (o.revision > 0) await this.cfg.update(k, o.data ?? "", o.revision);
        else await this.cfg.create(k, o.data ?? "");
      }
    } catch (err) {
      if (isCasConflict(err)) return "conflict";
      throw err;
    }
    return "ok";
  }

  /**
   * Rendered entries by device and setting key, for many devices and named keys (a fleet or group
   * layer change): one pass over `*.<key>` per key instead of a get per device and key.
   */
  private async currentByKey(keys: readonly string[]): Promise<Map<string, Map<string, KvEntry>>> {
    const byDevice = new Map<string, Map<string, KvEntry>>();
    for (const entries of await Promise.all(keys.map((k) => readAll(this.cfg, `*.${k}`)))) {
      for (const e of entries.values()) {
        const dot = e.key.indexOf(".");
        const device = e.key.slice(0, dot);
        let m = byDevice.get(device);
        if (!m) byDevice.set(device, (m = new Map()));
        m.set(e.key.slice(dot + 1), e);
      }
    }
    return byDevice;
  }

  /** The device's rendered entries (live or deleted), by setting key. */
  private async current(device: string, keys?: readonly string[]): Promise<Map<string, KvEntry>> {
    const names: string[] = [];
    if (keys) names.push(...keys.map((k) => `${device}.${k}`));
    else for await (const k of await this.cfg.keys(`${device}.>`)) names.push(k);
    const out = new Map<string, KvEntry>();
    for (const e of await mapLimit(names, 16, (n) => this.cfg.get(n))) {
      if (e) out.set(e.key.slice(device.length + 1), e);
    }
    return out;
  }
}

function sameRendered(e: KvEntry, want: RenderedConfigT): boolean {
  const r = RenderedConfig.safeParse(safeJson(e));
  return r.success && stableJson(r.data) === stableJson(want);
}

function safeJson(e: KvEntry): unknown {
  try {
    return e.json();
  } catch {
    return undefined;
  }
}
