import { deadline } from "@canopy/protocol";
import { nodeSerialIo, type SerialIo } from "../serial/io.js";
import { BootPort } from "./boot-port.js";
import { BootCodec, BootOp, BootStatus, WRITE_CHUNK } from "./canopy-protocol.js";
import { FlashError, type Flasher, type FlashRequest, type FlashResult } from "./flasher.js";

/**
 * The Canopy serial bootloader flasher (PROTOCOL.md part 4): INFO → BEGIN (the device says where to
 * resume) → WRITE… (ACK/NAK with the offset it expects) → FINISH (the device hashes what it holds) →
 * ACTIVATE(trial) → the new app's hello and CONFIRM, which we answer; a device that comes back with
 * its old version has reverted. A lost port (unplug, pty gone) is reopened and the transfer resumes
 * from the device's offset, so at most the chunk in flight is sent twice.
 */
export class CanopyBootloaderFlasher implements Flasher {
  readonly name = "canopy";
  readonly trialBoot = true;
  readonly formats = ["bin"] as const;

  constructor(private readonly io: SerialIo = nodeSerialIo) {}

  async flash(req: FlashRequest): Promise<FlashResult> {
    const overall = deadline(req.deadlineMs, req.signal);
    const signal = overall.signal;
    const port = new BootPort(this.io, req.port, req.baud ?? 115200);
    const confirmWithinMs = Number(req.options?.["confirmWithinMs"] ?? 15_000);
    let bytesSent = 0;
    try {
      for (;;) {
        if (signal.aborted) throw aborted(req.signal);
        if (!port.open) await port.connect(signal);
        try {
          bytesSent += await this.transfer(port, req, signal);
          break;
        } catch (err) {
          // The port went away mid-transfer: reopen and resume from the device's offset.
          if (err instanceof FlashError && err.code === "no_response" && !port.open && !signal.aborted) continue;
          throw err;
        }
      }
      req.onProgress({ phase: "booting", bytes: req.image.data.length, total: req.image.data.length });
      port.activate();
      const ack = await port.request(BootOp.Activate, BootCodec.activate(true, confirmWithinMs), signal);
      if (ack.status !== BootStatus.Ok) throw new FlashError("tool_failed", `the bootloader refused ACTIVATE (status ${ack.status})`);
      return { ...(await this.awaitBoot(port, req, confirmWithinMs, signal)), bytesSent };
    } catch (err) {
      if (err instanceof FlashError) throw err;
      throw new FlashError(signal.aborted ? aborted(req.signal).code : "tool_failed", String(err), { cause: err });
    } finally {
      overall.clear();
      await port.close();
    }
  }

  /** INFO, BEGIN, WRITEs, FINISH. Returns the image bytes written in this attempt. */
  private async transfer(port: BootPort, req: FlashRequest, signal: AbortSignal): Promise<number> {
    const { data, sha256, version } = req.image;
    const info = BootCodec.parseInfo((await port.request(BootOp.Info, new Uint8Array(), signal)).body);
    if (info.boot !== undefined) port.runningBoot(info.boot);
    if (data.length > info.maxImage) throw new FlashError("bad_image", `image of ${data.length} bytes exceeds the device's ${info.maxImage}`);
    const chunk = Math.max(16, Math.min(WRITE_CHUNK, info.maxChunk));
    const begin = await port.request(BootOp.Begin, BootCodec.begin(sha256, data.length, version), signal);
    if (begin.status !== BootStatus.Ok) throw new FlashError("tool_failed", `the bootloader refused BEGIN (status ${begin.status})`);
    let offset = BootCodec.parseOffset(begin.body);
    let sent = 0;
    req.onProgress({ phase: "flashing", bytes: offset, total: data.length, detail: offset > 0 ? `resuming at ${offset}` : "" });
    while (offset < data.length) {
      const piece = data.subarray(offset, Math.min(offset + chunk, data.length));
      const r = await port.request(BootOp.Write, BootCodec.write(offset, piece), signal);
      sent += piece.length;
      const next = BootCodec.parseOffset(r.body);
      if (r.status !== BootStatus.Ok && r.status !== BootStatus.NakOffset) throw new FlashError("tool_failed", `WRITE at ${offset}: status ${r.status}`);
      if (next > data.length) throw new FlashError("tool_failed", `the device expects offset ${next} past the image end`);
      offset = next;
      req.onProgress({ phase: "flashing", bytes: offset, total: data.length });
    }
    req.onProgress({ phase: "verifying", bytes: data.length, total: data.length });
    const fin = await port.request(BootOp.Finish, new Uint8Array(), signal);
    const deviceHash = BootCodec.parseHash(fin.body);
    if (fin.status !== BootStatus.Ok || deviceHash !== sha256) {
      throw new FlashError("verify_failed", `the device hashed ${deviceHash}, expected ${sha256}: not activated`);
    }
    return sent;
  }

  /** After ACTIVATE: the new app must say hello with the new version and CONFIRM in time. */
  private async awaitBoot(port: BootPort, req: FlashRequest, confirmWithinMs: number, outer: AbortSignal): Promise<Omit<FlashResult, "bytesSent">> {
    const boot = deadline(confirmWithinMs * 2 + 5_000, outer);
    try {
      return await this.awaitConfirm(port, req, boot.signal, outer);
    } finally {
      boot.clear();
    }
  }

  private async awaitConfirm(port: BootPort, req: FlashRequest, signal: AbortSignal, outer: AbortSignal): Promise<Omit<FlashResult, "bytesSent">> {
    const want = req.image.version;
    let booted: string | undefined;
    while (!signal.aborted) {
      if (!port.open) {
        await port.connect(signal).catch(() => {});
        continue;
      }
      const e = await port.nextEvent(signal);
      if (!e) continue;
      if (e.kind === "hello") {
        booted = e.version;
        if (e.version !== want) return { confirmed: false, bootedVersion: e.version };
        req.onProgress({ phase: "confirming", bytes: req.image.data.length, total: req.image.data.length, detail: `running ${e.version}` });
      } else if (e.version === want) {
        port.ackConfirm();
        // The app repeats CONFIRM until an ack gets through: keep answering until it goes quiet.
        for (;;) {
          const quiet = deadline(1_000, outer);
          const next = await port.nextEvent(quiet.signal).finally(() => quiet.clear());
          if (next?.kind !== "confirm") break;
          port.ackConfirm();
        }
        return { confirmed: true, bootedVersion: want };
      }
    }
    if (req.signal.aborted) throw aborted(req.signal);
    throw new FlashError("timeout", booted ? `version ${booted} booted but never confirmed` : "the MCU did not come back after ACTIVATE");
  }
}

function aborted(signal: AbortSignal): FlashError {
  return signal.aborted ? new FlashError("cancelled", "cancelled") : new FlashError("timeout", "the flash deadline passed");
}
