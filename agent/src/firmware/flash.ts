import { join } from "node:path";
import {
  BridgeFlashResult,
  CanopyError,
  ErrorCode,
  FlashArgs,
  Subjects,
  deadline,
  errorMessage,
  flashFailureMessage,
  sleep,
  type BridgeFlashRequest,
  type FlashEvent,
  type FlashState,
} from "@canopy/protocol";
import { defineHandler, type HandlerContext } from "../commands/registry.js";
import { requestBridge } from "../mcus/bridge-request.js";
import type { DownloadProgress } from "./download.js";
import { checkFlashSignature, fleetSigningKey } from "./verify.js";

/** Deadlines per phase: nothing waits forever, every end says why. */
const DOWNLOAD_DEADLINE_MS = 5 * 60_000;
/** The bridge's whole write + verify + boot + confirm, on top of the confirm window. */
const FLASH_BASE_MS = 60_000;
/** Worst serial rate we budget for, bytes/s (a 115,200-baud line carries ~11 KB/s). */
const MIN_RATE = 2_000;
const PROGRESS_EVERY_MS = 500;
/** A bridge that is (re)starting has this long to answer. */
const BRIDGE_WAIT_MS = 60_000;

/**
 * `firmware.flash` (sent by `canopy flash`): download the image with resume and check its sha256,
 * optionally wait for `applyAt` (staged flash), then have the firmware bridge write it to the MCU
 * and boot it on trial; the MCU's CONFIRM makes it `confirmed`, a revert `rolled_back`. Progress goes
 * upstream as `FlashEvent`s on `up.<dev>.evt.mcu.<mcu>.flash`; the result is the final event. It is
 * safe to re-run after an agent restart: the download and the bootloader transfer both resume.
 */
export const firmwareFlash = defineHandler({
  name: "firmware.flash",
  args: FlashArgs,
  timeoutMs: 10 * 60_000,
  concurrent: true,
  // Both the download and the bootloader transfer resume: a second run continues, it does not redo.
  rerunnable: true,
  async run(a, signal, ctx) {
    const events = new FlashEvents(ctx, a);
    events.emit("queued", 0, `flash ${a.board}@${a.version} to ${a.mcu}`);
    try {
      checkFlashSignature(a, fleetSigningKey(ctx.state.config.get("effective")));
    } catch (err) {
      throw events.fail("failed", errorMessage(err));
    }
    // Loaded by the first flash: the object-store client is not needed by an idle agent.
    const { FirmwareCache } = await import("./download.js");
    const cache = new FirmwareCache(join(ctx.options.data, "firmware"), ctx.nc, Number(process.env["CANOPY_TEST_FIRMWARE_CHUNK_DELAY_MS"] ?? 0));
    let path: string;
    try {
      const dl = deadline(DOWNLOAD_DEADLINE_MS, signal);
      path = await cache.fetch(a, (p) => events.download(p), dl.signal).finally(() => dl.clear());
    } catch (err) {
      throw events.fail("failed", `download: ${errorMessage(err)}`);
    }
    if (a.applyAt !== undefined && a.applyAt > Date.now()) {
      events.emit("downloading", a.size, `verified; staged until ${new Date(a.applyAt).toISOString()}`, true);
      if (!(await sleep(a.applyAt - Date.now(), signal))) throw events.fail("failed", "cancelled while staged");
    }
    const deadlineMs = FLASH_BASE_MS + a.confirmWithinMs * 2 + Math.ceil((a.size / MIN_RATE) * 1000);
    const req: BridgeFlashRequest = { id: ctx.command.id, path, board: a.board, version: a.version, sha256: a.sha256, size: a.size, format: a.format, flasher: a.flasher, confirmWithinMs: a.confirmWithinMs, deadlineMs };
    events.emit("flashing", 0, `handing ${a.size} bytes to the firmware bridge`, true);
    let r: BridgeFlashResult;
    try {
      const subject = Subjects.localMcuFlash(ctx.device, a.mcu);
      r = BridgeFlashResult.parse(await requestBridge(ctx, subject, req, deadlineMs + 5_000, signal, "the firmware bridge", ctx.command.now() + BRIDGE_WAIT_MS));
    } catch (err) {
      throw events.fail("failed", errorMessage(err));
    }
    if (r.state !== "confirmed") throw events.fail(r.state, r.detail, r.runningVersion);
    return events.emit("confirmed", a.size, r.detail, true, r.runningVersion);
  },
});

/** Progress of one flash, published upstream (throttled), ending with the terminal event. */
class FlashEvents {
  private last = 0;
  private rateFrom: { at: number; bytes: number } | undefined;

  constructor(private readonly ctx: HandlerContext, private readonly a: FlashArgs) {}

  download(p: DownloadProgress): void {
    if (!this.rateFrom) this.rateFrom = { at: Date.now(), bytes: p.bytes };
    const now = Date.now();
    if (now - this.last < PROGRESS_EVERY_MS && p.bytes < p.total && p.bytes !== p.resumedAt) return;
    const secs = (now - this.rateFrom.at) / 1000;
    const rate = secs > 0 ? Math.round((p.bytes - this.rateFrom.bytes) / secs) : 0;
    this.emit("downloading", p.bytes, p.resumedAt > 0 ? `resumed at byte ${p.resumedAt}` : "", true, undefined, rate);
  }

  emit(state: FlashState, bytes: number, detail: string, force = true, runningVersion?: string, rate = 0): FlashEvent {
    const ev: FlashEvent = {
      id: this.ctx.command.id,
      mcu: this.a.mcu,
      state,
      version: this.a.version,
      sha256: this.a.sha256,
      bytes,
      total: this.a.size,
      rate,
      detail,
      at: Date.now(),
      ...(runningVersion ? { runningVersion } : {}),
    };
    if (force) this.last = ev.at;
    this.ctx.publisher.publish(Subjects.mcuFlashEvent(this.ctx.device, this.a.mcu), JSON.stringify(ev)).catch(() => {});
    this.ctx.log.info({ mcu: this.a.mcu, version: this.a.version, state, bytes, detail }, "flash");
    return ev;
  }

  fail(state: "rolled_back" | "failed", detail: string, runningVersion?: string): CanopyError {
    this.emit(state, 0, detail, true, runningVersion);
    return new CanopyError(ErrorCode.Internal, flashFailureMessage(state, detail));
  }
}
