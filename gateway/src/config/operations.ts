import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import {
  Assets,
  CanopyError,
  ErrorCode,
  RenderedConfig,
  checkConfigKey,
  checkId,
  layerName,
  type ConfigKeyState,
  type ConfigLayer,
  type ConfigValue,
} from "@canopy/protocol";
import { ConfigLayers } from "./layers.js";
import { FleetView } from "./fleet.js";
import { Renderer, type RenderResult } from "./render.js";
import { RolloutStore } from "./rollouts.js";
import { readAll } from "../kv/read.js";

/** Builds the layer from `--fleet | --group G | --device D`; exactly one must be given. */
export function layerFromFlags(o: { fleet?: boolean; group?: string; device?: string }): ConfigLayer {
  const given = [o.fleet ? "--fleet" : "", o.group !== undefined ? "--group" : "", o.device !== undefined ? "--device" : ""].filter(Boolean);
  if (given.length !== 1) {
    throw new CanopyError(ErrorCode.InvalidInput, `give exactly one of --fleet, --group <group>, --device <device>${given.length ? ` (got ${given.join(" and ")})` : ""}`);
  }
  if (o.fleet) return { kind: "fleet" };
  if (o.group !== undefined) return { kind: "group", group: checkId(o.group, "group id") };
  return { kind: "device", device: checkId(o.device, "device id") };
}

/** Operator actions on config: each changes one layer, then renders the devices it can affect. */
export class ConfigService {
  private renderer: Promise<Renderer> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    readonly layers: ConfigLayers,
    readonly fleet: FleetView,
    readonly rollouts: RolloutStore,
  ) {}

  static async open(nc: NatsConnection): Promise<ConfigService> {
    return new ConfigService(nc, await ConfigLayers.open(nc), await FleetView.open(nc), await RolloutStore.open(nc));
  }

  async set(layer: ConfigLayer, key: string, value: ConfigValue): Promise<{ revision: number; render: RenderResult }> {
    await this.refuseDuringRollout(layer, key);
    const revision = await this.layers.set(layer, key, value);
    return { revision, render: await this.renderLayer(layer, key) };
  }

  async unset(layer: ConfigLayer, key: string): Promise<{ removed: boolean; render: RenderResult }> {
    await this.refuseDuringRollout(layer, key);
    const removed = await this.layers.unset(layer, key);
    return { removed, render: await this.renderLayer(layer, key) };
  }

  async revert(layer: ConfigLayer, key: string, to: number): Promise<{ operation: string; value?: ConfigValue; render: RenderResult }> {
    await this.refuseDuringRollout(layer, key);
    const h = await this.layers.revert(layer, key, to);
    return { operation: h.operation, ...(h.value === undefined ? {} : { value: h.value }), render: await this.renderLayer(layer, key) };
  }

  /** Devices a layer can reach: all, a group's members, or the one device. */
  async devicesOf(layer: ConfigLayer): Promise<string[]> {
    if (layer.kind === "device") return [layer.device];
    if (layer.kind === "group") return (await this.fleet.members(layer.group)).map((r) => r.id);
    return (await this.fleet.records()).map((r) => r.id);
  }

  async renderLayer(layer: ConfigLayer, key: string): Promise<RenderResult> {
    this.renderer ??= Renderer.open(this.nc);
    const renderer = await this.renderer;
    if (layer.kind === "fleet") return renderer.render({ keys: [key] });
    return renderer.render({ devices: await this.devicesOf(layer), keys: [key] });
  }

  /**
   * Every rendered key of a device with its source layer and what the device applied. `revision` is the
   * source layer's revision (the number `config set` prints, `config history` lists and `config revert
   * --to` takes); `renderedRevision` is the device's own copy in KV `cfg`, which the agent reports.
   */
  async show(device: string): Promise<DeviceConfigView> {
    checkId(device, "device id");
    const [record] = await this.fleet.records([device]);
    if (!record) throw new CanopyError(ErrorCode.NotFound, `device ${device} is not enrolled`);
    const cfg = await new Kvm(this.nc).open(Assets.kvConfig);
    const rendered = await readAll(cfg, `${device}.>`);
    const state = await this.fleet.configState(device);
    const keys: DeviceConfigView["keys"] = [];
    for (const e of rendered.values()) {
      const r = RenderedConfig.safeParse(e.json());
      const key = e.key.slice(device.length + 1);
      const applied = state?.keys[key];
      const layer = r.success ? layerOfSource(r.data.source) : undefined;
      const authored = layer ? await this.layers.get(layer, key).catch(() => undefined) : undefined;
      const inSync = applied !== undefined && applied.revision >= e.revision && applied.status === "applied";
      const failed = applied?.status === "failed" && applied.revision >= e.revision;
      keys.push({
        key,
        value: r.success ? r.data.value : null,
        source: r.success ? r.data.source : "?",
        revision: authored?.revision ?? null,
        renderedRevision: e.revision,
        applied: applied ?? null,
        inSync,
        status: inSync ? "applied" : failed ? "failed" : "pending",
      });
    }
    keys.sort((a, b) => a.key.localeCompare(b.key));
    return {
      device,
      groups: record.groups,
      online: state?.online ?? false,
      revision: Math.max(0, ...keys.map((k) => k.renderedRevision)),
      appliedRevision: state?.revision ?? null,
      failed: keys.filter((k) => k.status === "failed").length,
      pending: keys.filter((k) => k.status === "pending").length,
      keys,
    };
  }

  private async refuseDuringRollout(layer: ConfigLayer, key: string): Promise<void> {
    checkConfigKey(key);
    if (layer.kind !== "group") return;
    const clash = (await this.rollouts.active()).find((s) => s.rollout.group === layer.group && s.rollout.key === key);
    if (clash) {
      throw new CanopyError(
        ErrorCode.Conflict,
        `rollout ${clash.rollout.id} is changing ${key} in ${layerName(layer)}; wait for it or 'canopy rollout abort ${clash.rollout.id}'`,
      );
    }
  }
}

/** `fleet`, `group:<g>`, `device:<d>` back to the layer (undefined for a rollout's stand-in values). */
function layerOfSource(source: string): ConfigLayer | undefined {
  if (source === "fleet") return { kind: "fleet" };
  const [kind, id] = source.split(":");
  if (!id) return undefined;
  return kind === "group" ? { kind: "group", group: id } : kind === "device" ? { kind: "device", device: id } : undefined;
}

export interface DeviceConfigView {
  device: string;
  groups: string[];
  online: boolean;
  /** Highest revision among the device's rendered keys in KV `cfg`. */
  revision: number;
  /** Highest rendered revision the device applied successfully (a refused one never counts). */
  appliedRevision: number | null;
  /** Keys the device refused (`config show` exits 1 when there are any). */
  failed: number;
  pending: number;
  keys: Array<{
    key: string;
    value: ConfigValue;
    source: string;
    /** The source layer's revision in `cfg-src` (null while a rollout stands in for the layer). */
    revision: number | null;
    renderedRevision: number;
    applied: ConfigKeyState | null;
    inSync: boolean;
    status: "applied" | "failed" | "pending";
  }>;
}
