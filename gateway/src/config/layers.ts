import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import {
  Assets,
  CanopyError,
  ConfigValue,
  ErrorCode,
  checkConfigKey,
  checkSetting,
  layerKey,
  layerName,
  parseLayerKey,
  type ConfigLayer,
  type ConfigValue as ConfigValueT,
} from "@canopy/protocol";
import { readAll } from "../kv/read.js";

export interface LayerValue {
  value: ConfigValueT;
  revision: number;
  updatedAt: number;
}

export interface LayerHistoryEntry {
  revision: number;
  at: number;
  operation: "set" | "unset";
  value?: ConfigValueT;
}

/** All authored values, by layer. */
export interface LayerSnapshot {
  fleet: Map<string, ConfigValueT>;
  groups: Map<string, Map<string, ConfigValueT>>;
  devices: Map<string, Map<string, ConfigValueT>>;
}

/** The authored layers in hub KV `cfg-src` (history 64): what operators set, before rendering. */
export class ConfigLayers {
  constructor(readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<ConfigLayers> {
    return new ConfigLayers(await new Kvm(nc).open(Assets.kvConfigSource));
  }

  async set(layer: ConfigLayer, key: string, value: ConfigValueT): Promise<number> {
    checkSetting(checkConfigKey(key), value);
    return this.kv.put(layerKey(layer, key), JSON.stringify(value));
  }

  /** False when the key was not set in that layer. */
  async unset(layer: ConfigLayer, key: string): Promise<boolean> {
    const k = layerKey(layer, checkConfigKey(key));
    const e = await this.kv.get(k);
    if (!e || e.operation !== "PUT") return false;
    await this.kv.delete(k);
    return true;
  }

  async get(layer: ConfigLayer, key: string): Promise<LayerValue | undefined> {
    const e = await this.kv.get(layerKey(layer, checkConfigKey(key)));
    return e && e.operation === "PUT" ? toValue(e) : undefined;
  }

  async history(layer: ConfigLayer, key: string): Promise<LayerHistoryEntry[]> {
    const out: LayerHistoryEntry[] = [];
    for await (const e of await this.kv.history({ key: layerKey(layer, checkConfigKey(key)) })) {
      out.push(
        e.operation === "PUT"
          ? { revision: e.revision, at: e.created.getTime(), operation: "set", value: toValue(e).value }
          : { revision: e.revision, at: e.created.getTime(), operation: "unset" },
      );
    }
    return out.sort((a, b) => a.revision - b.revision);
  }

  /** Sets the layer back to what it held at `revision` (a new revision; history is never rewritten). */
  async revert(layer: ConfigLayer, key: string, revision: number): Promise<LayerHistoryEntry> {
    const h = (await this.history(layer, key)).find((e) => e.revision === revision);
    if (!h) {
      throw new CanopyError(
        ErrorCode.NotFound,
        `${layerName(layer)} ${key} has no revision ${revision} in its history (see 'canopy config history ${key}')`,
      );
    }
    if (h.operation === "set") await this.set(layer, key, h.value ?? null);
    else await this.unset(layer, key);
    return h;
  }

  /** Every authored value, or only the values of `keys`. */
  async snapshot(keys?: readonly string[]): Promise<LayerSnapshot> {
    const filters = keys ? keys.flatMap((k) => [`fleet.${k}`, `group.*.${k}`, `device.*.${k}`]) : [">"];
    const snap: LayerSnapshot = { fleet: new Map(), groups: new Map(), devices: new Map() };
    for (const f of filters) {
      for (const e of (await readAll(this.kv, f)).values()) {
        const parsed = parseLayerKey(e.key);
        if (!parsed) continue;
        const { value } = toValue(e);
        const { layer, key } = parsed;
        if (layer.kind === "fleet") snap.fleet.set(key, value);
        else if (layer.kind === "group") mapOf(snap.groups, layer.group).set(key, value);
        else mapOf(snap.devices, layer.device).set(key, value);
      }
    }
    return snap;
  }
}

function mapOf(m: Map<string, Map<string, ConfigValueT>>, id: string): Map<string, ConfigValueT> {
  let inner = m.get(id);
  if (!inner) m.set(id, (inner = new Map()));
  return inner;
}

function toValue(e: KvEntry): LayerValue {
  let value: ConfigValueT;
  try {
    value = ConfigValue.parse(e.json());
  } catch {
    value = e.string();
  }
  return { value, revision: e.revision, updatedAt: e.created.getTime() };
}
