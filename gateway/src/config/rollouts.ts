import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { Assets, CanopyError, ErrorCode, checkConfigKey, checkId, checkSetting, type ConfigValue } from "@canopy/protocol";
import { Rollout, planWaves, ACTIVE_STATES, type Rollout as RolloutT } from "./rollout-model.js";
import { mapLimit } from "../kv/read.js";

export interface StoredRollout {
  rollout: RolloutT;
  revision: number;
}

export interface RolloutRequest {
  key: string;
  value: ConfigValue;
  group: string;
  /** Group members at creation; waves are fixed then. */
  devices: string[];
  previous: { set: boolean; value?: ConfigValue };
  waves: number[];
  healthTimeoutMs: number;
  maxFailures: number;
  offlineFails: boolean;
  soakMs: number;
}

/** Rollout records in hub KV `rollouts`; every change is a compare-and-set on the record's revision. */
export class RolloutStore {
  constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<RolloutStore> {
    return new RolloutStore(await new Kvm(nc).open(Assets.kvRollouts));
  }

  async get(id: string): Promise<StoredRollout | undefined> {
    const e = await this.kv.get(checkId(id, "id"));
    if (!e || e.operation !== "PUT") return undefined;
    const r = Rollout.safeParse(e.json());
    return r.success ? { rollout: r.data, revision: e.revision } : undefined;
  }

  /** Newest first. Unreadable records are skipped (never crash the task on one bad record). */
  async listStored(): Promise<StoredRollout[]> {
    const ids: string[] = [];
    for await (const k of await this.kv.keys()) ids.push(k);
    const all = await mapLimit(ids, 16, (id) => this.get(id).catch(() => undefined));
    return all.filter((r): r is StoredRollout => r !== undefined).sort((a, b) => b.rollout.createdAt - a.rollout.createdAt);
  }

  async list(): Promise<RolloutT[]> {
    return (await this.listStored()).map((s) => s.rollout);
  }

  async active(): Promise<StoredRollout[]> {
    return (await this.listStored()).filter((s) => ACTIVE_STATES.includes(s.rollout.state));
  }

  async create(req: RolloutRequest, now = Date.now()): Promise<RolloutT> {
    checkSetting(checkConfigKey(req.key), req.value);
    checkId(req.group, "group id");
    const clash = (await this.active()).find((s) => s.rollout.key === req.key && s.rollout.group === req.group);
    if (clash) {
      throw new CanopyError(ErrorCode.Conflict, `rollout ${clash.rollout.id} of ${req.key} to group ${req.group} is still ${clash.rollout.state}; wait for it or abort it`);
    }
    if (req.devices.length === 0) throw new CanopyError(ErrorCode.NotFound, `group ${req.group} has no enrolled devices`);
    const rollout: RolloutT = {
      id: `r${now.toString(36)}${randomBytes(3).toString("hex")}`,
      key: req.key,
      value: req.value,
      group: req.group,
      previous: req.previous,
      createdAt: now,
      updatedAt: now,
      state: "running",
      current: 0,
      waves: planWaves(req.devices, req.waves),
      options: { healthTimeoutMs: req.healthTimeoutMs, maxFailures: req.maxFailures, offlineFails: req.offlineFails, soakMs: req.soakMs },
      failures: [],
    };
    await this.kv.create(rollout.id, JSON.stringify(Rollout.parse(rollout)));
    return rollout;
  }

  /** Compare-and-set: throws on a lost race (the caller re-reads). */
  async update(s: StoredRollout, next: RolloutT): Promise<StoredRollout> {
    const revision = await this.kv.update(next.id, JSON.stringify(Rollout.parse(next)), s.revision);
    return { rollout: next, revision };
  }

  /** Asks the gateway to halt and roll back; it acts on its next step. */
  async requestAbort(id: string): Promise<RolloutT> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const s = await this.get(id);
      if (!s) throw new CanopyError(ErrorCode.NotFound, `no rollout ${id}`);
      if (!ACTIVE_STATES.includes(s.rollout.state)) {
        throw new CanopyError(ErrorCode.Conflict, `rollout ${id} is already ${s.rollout.state}`);
      }
      try {
        return (await this.update(s, { ...s.rollout, abortRequested: true, updatedAt: Date.now() })).rollout;
      } catch {
        /* raced with the gateway's step: re-read */
      }
    }
    throw new CanopyError(ErrorCode.Conflict, `could not mark rollout ${id} for abort: too much contention`);
  }
}
