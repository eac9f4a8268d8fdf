import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import {
  Assets,
  ConfigKeyState,
  DeviceRecord,
  checkId,
  isOnline,
  type ConfigKeyState as ConfigKeyStateT,
  type DeviceRecord as DeviceRecordT,
} from "@canopy/protocol";
import { z } from "zod";
import { mapLimit, readAll } from "../kv/read.js";
import { lastSeen, readBeat } from "../registry/beats.js";

/** The part of a device's status record config rollouts and `config show` need. */
export interface DeviceConfigState {
  online: boolean;
  seenAt: number;
  heartbeatMs: number;
  revision?: number;
  keys: Record<string, ConfigKeyStateT>;
}

const StatusSlice = z.object({
  at: z.number(),
  heartbeatMs: z.number(),
  state: z.enum(["online", "stopping"]).default("online"),
  config: z.object({ revision: z.number().optional(), keys: z.record(z.string(), ConfigKeyState).optional() }).optional(),
});

/** Registry records (KV `devices`) and last-known config state (KV `status`), read in bulk. */
export class FleetView {
  constructor(
    private readonly devices: KV,
    private readonly status: KV,
    private readonly beats: KV,
  ) {}

  static async open(nc: NatsConnection): Promise<FleetView> {
    const kvm = new Kvm(nc);
    return new FleetView(await kvm.open(Assets.kvDevices), await kvm.open(Assets.kvStatus), await kvm.open(Assets.kvBeat));
  }

  /** Records of `ids` (unknown ids skipped), or of every enrolled device, sorted by id. */
  async records(ids?: readonly string[]): Promise<DeviceRecordT[]> {
    const entries = ids
      ? (await mapLimit(ids, 32, (id) => this.devices.get(checkId(id, "device id")))).filter((e) => e?.operation === "PUT")
      : [...(await readAll(this.devices)).values()];
    const out: DeviceRecordT[] = [];
    for (const e of entries) {
      const r = e ? DeviceRecord.safeParse(safeJson(e.json.bind(e))) : undefined;
      if (r?.success) out.push(r.data);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async members(group: string): Promise<DeviceRecordT[]> {
    checkId(group, "group id");
    return (await this.records()).filter((r) => r.groups.includes(group));
  }

  /** Last-known config state; online is judged with the hub's receive time, not the device clock. */
  async configState(id: string, now = Date.now()): Promise<DeviceConfigState | undefined> {
    const [e, beat] = await Promise.all([this.status.get(checkId(id, "device id")), readBeat(this.beats, id)]);
    if (!e || e.operation !== "PUT") return undefined;
    const s = StatusSlice.safeParse(safeJson(e.json.bind(e)));
    if (!s.success) return undefined;
    // The newer of the status record and the compact beat (KV `beat`), both in hub time.
    const seenAt = lastSeen(e, beat) ?? e.created.getTime();
    return {
      online: isOnline({ at: seenAt, heartbeatMs: s.data.heartbeatMs, state: s.data.state }, now),
      seenAt,
      heartbeatMs: s.data.heartbeatMs,
      ...(s.data.config?.revision === undefined ? {} : { revision: s.data.config.revision }),
      keys: s.data.config?.keys ?? {},
    };
  }
}

function safeJson(fn: () => unknown): unknown {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
