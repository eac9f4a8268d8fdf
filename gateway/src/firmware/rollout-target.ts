import type { NatsConnection } from "@nats-io/transport-node";
import { isTerminal, type CommandRecord, type McuSummary } from "@canopy/protocol";
import { CommandSender } from "../commands/index.js";
import type { Logger } from "../logging.js";
import { Registry, type DeviceView } from "../registry/devices.js";
import type { RolloutTarget } from "../rollout/engine.js";
import { releasedUnits, type WaveT } from "../rollout/model.js";
import { sendFlash } from "./flash.js";
import { splitUnit, unitCommandId, type FirmwareRollout } from "./rollout-model.js";
import { FirmwareStore } from "./store.js";

/** A flash queued by a rollout waits this long for an offline device before it expires. */
const FLASH_TTL_MS = 24 * 3600_000;

/**
 * The firmware target of the wave engine. Release = a `firmware.flash` command per MCU of the wave
 * (fixed command ids: a repeated step finds the command instead of sending another). Health = that
 * command succeeded (the MCU confirmed the new version) and the MCU stayed online, on that version,
 * for the gate's soak time. A halt flashes the previous image back to the released MCUs that took the
 * new one (those the bootloader reverted already run it) and cancels flashes that have not run yet.
 */
export function firmwareTarget(nc: NatsConnection, log: Logger): RolloutTarget<FirmwareRollout> {
  const senderP = CommandSender.open(nc);
  const command = async (unit: string, id: string): Promise<CommandRecord | undefined> => (await (await senderP).store.get(splitUnit(unit).device, id))?.record;
  const flash = async (r: FirmwareRollout, unit: string, version: string, id: string): Promise<void> => {
    if (await command(unit, id)) return;
    const { device, mcu } = splitUnit(unit);
    await sendFlash(nc, { device, mcu, board: r.board, version, confirmWithinMs: r.confirmWithinMs, ttlMs: FLASH_TTL_MS, by: `rollout:${r.id}`, commandId: id });
    log.info({ rollout: r.id, unit, version, command: id }, "firmware rollout: flash queued");
  };
  return {
    awaited: `confirmed report of the new firmware`,
    async release(r, wave) {
      for (const unit of wave.devices) await flash(r, unit, r.version, unitCommandId(r, unit, "flash"));
    },
    async evaluate(r, wave, now) {
      const view = new Map((await (await Registry.open(nc)).view(now)).map((v) => [v.record.id, v]));
      const out: WaveT["results"] = {};
      for (const unit of wave.devices) out[unit] = health(r, unit, await command(unit, unitCommandId(r, unit, "flash")), view.get(splitUnit(unit).device), now);
      return out;
    },
    async finalize() {},
    async rollBack(r) {
      const store = await FirmwareStore.open(nc);
      const sender = await senderP;
      const view = new Map((await (await Registry.open(nc)).view()).map((v) => [v.record.id, v]));
      for (const unit of releasedUnits(r)) {
        const rec = await command(unit, unitCommandId(r, unit, "flash"));
        if (rec && !isTerminal(rec.state)) {
          await sender.cancel(rec.id).catch((err: unknown) => log.warn({ rollout: r.id, unit, err: String(err) }, "could not cancel a pending flash"));
          continue;
        }
        const prev = r.previous[unit];
        const { device, mcu } = splitUnit(unit);
        const running = view.get(device)?.status?.mcus?.find((m) => m.id === mcu)?.firmware;
        if (!prev || !needsFlashBack(rec, running, prev)) continue;
        if (!(await store.get(r.board, prev))) {
          log.warn({ rollout: r.id, unit, previous: prev }, "firmware rollout halted: the previous image is not in the store; not flashed back");
          continue;
        }
        await flash(r, unit, prev, unitCommandId(r, unit, "back"));
      }
    },
  };
}

/**
 * After a halt, does this MCU need its previous image back? Yes when its flash confirmed, or when it
 * reports anything but the version it ran (a flasher without a trial boot, e.g. avrdude, leaves an
 * unconfirmed image in place). Not when its bootloader already reverted, nor when nothing was written.
 */
export function needsFlashBack(rec: Pick<CommandRecord, "state"> | undefined, running: string | undefined, previous: string): boolean {
  if (!rec) return false;
  return rec.state === "succeeded" || (running !== undefined && running !== previous);
}

/** After the confirm, an MCU may be missing from the reports this long (its link reopens, a heartbeat). */
const REPORT_GRACE_MS = 30_000;

/**
 * One MCU's health against the gate: its flash command succeeded (the MCU confirmed), and every
 * device report since then shows it online on the new version until the soak time has passed.
 */
export function health(r: FirmwareRollout, unit: string, rec: CommandRecord | undefined, dev: DeviceView | undefined, now: number): WaveT["results"][string] {
  const { mcu } = splitUnit(unit);
  if (!rec || !isTerminal(rec.state)) return { result: dev?.online ? "waiting" : "offline" };
  if (rec.state !== "succeeded") return { result: "failed", error: rec.error?.message ?? rec.state };
  const confirmedAt = rec.times["succeeded"] ?? rec.updatedAt;
  const late = now - confirmedAt > REPORT_GRACE_MS;
  const m: McuSummary | undefined = dev?.status?.mcus?.find((x) => x.id === mcu);
  // Only a device report that carries this flash (the bridge records it before it answers) says anything
  // about the new image: the MCU list in a report can be older than the report itself.
  if (!dev?.status || dev.status.reportedAt < confirmedAt || m?.lastFlash?.sha256 !== r.sha256) {
    return late ? { result: "failed", error: `confirmed ${r.version}, but the device's reports never showed it` } : { result: "waiting" };
  }
  if (m.firmware !== r.version) return late ? { result: "failed", error: `confirmed ${r.version}, then reported ${m.firmware}` } : { result: "waiting" };
  if (!(dev.online && m.online)) {
    return late ? { result: "failed", error: `confirmed ${r.version}, then stopped reporting` } : { result: "waiting" };
  }
  return now - confirmedAt >= r.gate.soakMs ? { result: "ok" } : { result: "waiting" };
}
