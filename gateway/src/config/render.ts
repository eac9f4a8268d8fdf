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

/**
 * Renders authored layers into hub KV `cfg` (`<dev>.<key>`). Idempotent: a key whose rendered value
 * did not change is not written, so devices see a new revision only for a real change. Every write is
 * a compare-and-set against the entry read *before* the layers were read, so two renderers racing
 * (CLI and gateway, two gateways) cannot leave an older view behind: the loser re-reads and retries.
 */
export class Renderer {
  constructor(
    private readonly cfg: KV,
    private readonly layers: ConfigLayers,
    private readonly fleet: FleetView,
    private readonly rollouts: RolloutStore,
  ) {}

  static async open(nc: NatsConnection): Promise<Renderer> {
    return new Renderer(
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
      const records = await this.fleet.records(pending);
      const current = await this.currentOf(records.map((r) => r.id), opts.keys);
      const snap = await this.layers.snapshot(opts.keys);
      const overlays = overlaysOf(await this.rollouts.list());
      const conflicts: string[] = [];
      await mapLimit(records, 64, async (r, i) => {
        const desired = effectiveConfig(r, snap, overlays, opts.keys);
        const res = await this.write(r.id, desired, current[i] ?? new Map(), opts.keys);
        if (res === "conflict") conflicts.push(r.id);
        else {
          total.written += res.written;
          total.removed += res.removed;
        }
      });
      if (pass === 0) total.devices = records.length;
      if (conflicts.length === 0) return total;
      pending = conflicts;
    }
    throw new CanopyError(ErrorCode.Conflict, `rendering kept racing with other writers for: ${(pending ?? []).join(", ")}`);
  }

  /**
   * Each device's rendered entries, by setting key. Many devices and named keys (a fleet or group
   * layer change): one pass over `*.<key>` per key instead of a get per device and key.
   */
  private async currentOf(devices: readonly string[], keys?: readonly string[]): Promise<Array<Map<string, KvEntry>>> {
    if (!keys || devices.length <= 16) return mapLimit(devices, 64, (d) => this.current(d, keys));
    const byDevice = new Map(devices.map((d) => [d, new Map<string, KvEntry>()]));
    for (const k of keys) {
      for (const e of (await readAll(this.cfg, `*.${k}`)).values()) {
        const dot = e.key.indexOf(".");
        byDevice.get(e.key.slice(0, dot))?.set(e.key.slice(dot + 1), e);
      }
    }
    return devices.map((d) => byDevice.get(d) ?? new Map());
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

  private async write(
    device: string,
    desired: Map<string, RenderedConfigT>,
    current: Map<string, KvEntry>,
    keys?: readonly string[],
  ): Promise<{ written: number; removed: number } | "conflict"> {
    let written = 0;
    let removed = 0;
    try {
      for (const [key, want] of desired) {
        const e = current.get(key);
        const live = e && e.operation === "PUT" ? e : undefined;
        if (live && sameRendered(live, want)) continue;
        const data = JSON.stringify(want);
        if (live) await this.cfg.update(`${device}.${key}`, data, live.revision);
        else await this.cfg.create(`${device}.${key}`, data);
        written++;
      }
      for (const [key, e] of current) {
        if (desired.has(key) || e.operation !== "PUT" || (keys && !keys.includes(key))) continue;
        await this.cfg.delete(`${device}.${key}`, { previousSeq: e.revision });
        removed++;
      }
    } catch (err) {
      if (isCasConflict(err)) return "conflict";
      throw err;
    }
    return { written, removed };
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
