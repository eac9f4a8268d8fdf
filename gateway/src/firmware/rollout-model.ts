import { createHash, randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { z } from "zod";
import { Assets, CanopyError, ErrorCode, FirmwareVersion, Id, Sha256Hex, checkId, parseDuration } from "@canopy/protocol";
import { planWaves, rolloutCoreShape } from "../rollout/model.js";
import { RolloutRecords } from "../rollout/store.js";
import type { Stored } from "../rollout/engine.js";

/** A firmware rollout's unit: one MCU, `<device>/<mcu>`. */
export const McuUnit = z.string().regex(/^[A-Za-z0-9_-]{1,64}\/[A-Za-z0-9_-]{1,64}$/, "must be <device>/<mcu>");

export function splitUnit(unit: string): { device: string; mcu: string } {
  const i = unit.indexOf("/");
  return { device: unit.slice(0, i), mcu: unit.slice(i + 1) };
}

/**
 * A staged firmware rollout (`canopy firmware rollout`): the wave engine of config rollouts
 * (`../rollout/engine.ts`) with MCUs as units. Stored in hub KV `rollouts` beside config rollouts
 * (ids start with `f`). `previous` is what each MCU ran at creation: what a halt flashes back.
 */
export const FirmwareRollout = z.object({
  id: Id,
  kind: z.literal("firmware"),
  board: Id,
  version: FirmwareVersion,
  sha256: Sha256Hex,
  /** How the MCUs were chosen, for the operator. */
  selector: z.string().max(256),
  previous: z.record(z.string(), z.string()),
  /** Health gate: the MCU confirmed the new version and stayed online this long after. */
  gate: z.object({ kind: z.literal("confirmed-and-online"), soakMs: z.number().int().nonnegative() }),
  confirmWithinMs: z.number().int().min(500).max(600_000),
  ...rolloutCoreShape(McuUnit),
});
export type FirmwareRollout = z.infer<typeof FirmwareRollout>;
export type StoredFirmwareRollout = Stored<FirmwareRollout>;

/** `confirmed-and-online:5m` (the only gate so far; the duration is the soak). */
export function parseGate(text: string): FirmwareRollout["gate"] {
  const m = /^confirmed-and-online(?::(.+))?$/.exec(text.trim());
  if (!m) throw new CanopyError(ErrorCode.InvalidInput, `--gate ${JSON.stringify(text)}: expected confirmed-and-online[:DURATION], e.g. confirmed-and-online:5m`);
  return { kind: "confirmed-and-online", soakMs: m[1] === undefined ? 0 : parseDuration(m[1], "--gate") };
}

/** The flash command of one unit: fixed per rollout, so a repeated step finds it instead of sending twice. */
export function unitCommandId(r: Pick<FirmwareRollout, "id">, unit: string, kind: "flash" | "back"): string {
  return `${r.id}-${kind === "flash" ? "f" : "b"}-${createHash("sha256").update(unit).digest("hex").slice(0, 16)}`;
}

export interface FirmwareRolloutRequest {
  board: string;
  version: string;
  sha256: string;
  selector: string;
  /** unit → the version it runs now. */
  units: Record<string, string>;
  waves: number[];
  gate: FirmwareRollout["gate"];
  confirmWithinMs: number;
  healthTimeoutMs: number;
  maxFailures: number;
}

export class FirmwareRolloutStore extends RolloutRecords<FirmwareRollout> {
  constructor(kv: KV) {
    super(kv, FirmwareRollout, "firmware rollout");
  }

  static async open(nc: NatsConnection): Promise<FirmwareRolloutStore> {
    return new FirmwareRolloutStore(await new Kvm(nc).open(Assets.kvRollouts));
  }

  async create(req: FirmwareRolloutRequest, now = Date.now()): Promise<FirmwareRollout> {
    checkId(req.board, "board");
    const units = Object.keys(req.units);
    if (units.length === 0) throw new CanopyError(ErrorCode.NotFound, `no ${req.board} MCU to roll out to (${req.selector}) that does not already run ${req.version}`);
    const busy = new Set((await this.active()).flatMap((s) => s.rollout.waves.flatMap((w) => w.devices)));
    const clash = units.filter((u) => busy.has(u));
    if (clash.length > 0) throw new CanopyError(ErrorCode.Conflict, `${clash.join(", ")} already in a firmware rollout that is still running; wait for it or abort it`);
    const rollout: FirmwareRollout = {
      id: `f${now.toString(36)}${randomBytes(3).toString("hex")}`,
      kind: "firmware",
      board: req.board,
      version: req.version,
      sha256: req.sha256,
      selector: req.selector,
      previous: req.units,
      gate: req.gate,
      confirmWithinMs: req.confirmWithinMs,
      createdAt: now,
      updatedAt: now,
      state: "running",
      current: 0,
      waves: planWaves(units, req.waves),
      options: { healthTimeoutMs: req.healthTimeoutMs, maxFailures: req.maxFailures, offlineFails: false, soakMs: 0 },
      failures: [],
    };
    await this.put(rollout);
    return rollout;
  }
}
