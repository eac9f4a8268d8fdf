import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { Assets, CanopyError, ErrorCode, checkConfigKey, checkId, checkSetting, type ConfigValue } from "@canopy/protocol";
import { Rollout, planWaves, type Rollout as RolloutT } from "./rollout-model.js";
import { RolloutRecords } from "../rollout/store.js";
import type { Stored } from "../rollout/engine.js";

export type StoredRollout = Stored<RolloutT>;

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

/** Config rollout records in hub KV `rollouts` (shared with firmware rollouts; see RolloutRecords). */
export class RolloutStore extends RolloutRecords<RolloutT> {
  constructor(kv: KV) {
    super(kv, Rollout);
  }

  static async open(nc: NatsConnection): Promise<RolloutStore> {
    return new RolloutStore(await new Kvm(nc).open(Assets.kvRollouts));
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
    await this.put(rollout);
    return rollout;
  }
}
