import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeSerialIo, type SerialIo } from "../serial/io.js";
import { avrdudeArgs, avrdudeFileFormat, avrdudeSettings } from "./avrdude-args.js";
import { watchBanner } from "./avrdude-banner.js";
import { checkIntelHex } from "./avrdude-hex.js";
import { AvrdudeOutput, classifyAvrdudeFailure } from "./avrdude-output.js";
import { FlashError, type FlashImage, type Flasher, type FlashRequest, type FlashResult } from "./flasher.js";

export interface AvrdudeFlasherOptions {
  /** The avrdude binary (tests pass a fake). Default: `avrdude` on PATH. */
  command?: string;
  /** How the banner is read after the write. Default: real serial ports. */
  io?: SerialIo;
  /** How long to wait for the new firmware's `hello` line after avrdude is done. Default 10 s. */
  bannerWindowMs?: number;
  /** After SIGTERM to avrdude's process group, SIGKILL follows this much later. Default 2 s. */
  killGraceMs?: number;
}

/**
 * Arduino-class AVRs through their serial bootloader (optiboot speaks STK500v1: `-c arduino`):
 * avrdude writes and verifies, then the new application's version banner confirms which firmware
 * booted. Request options: `part` (m328p), `programmer` (arduino), `baud` (115200, the bootloader's),
 * `appBaud` (the application's, for its banner; default `baud`), `attempts` (2: avrdude runs again
 * when the bootloader did not answer), `banner` (`off` skips the banner watch), `mcu` (when set, the
 * banner must name this MCU).
 */
export class AvrdudeFlasher implements Flasher {
  readonly name = "avrdude";
  readonly trialBoot = false;
  readonly formats: ReadonlyArray<FlashImage["format"]> = ["avr-hex", "hex", "bin"];
  private readonly command: string;
  private readonly io: SerialIo;
  private readonly bannerWindowMs: number;
  private readonly killGraceMs: number;

  constructor(opts: AvrdudeFlasherOptions = {}) {
    this.command = opts.command ?? "avrdude";
    this.io = opts.io ?? nodeSerialIo;
    this.bannerWindowMs = opts.bannerWindowMs ?? 10_000;
    this.killGraceMs = opts.killGraceMs ?? 2_000;
  }

  async flash(req: FlashRequest): Promise<FlashResult> {
    if (!this.formats.includes(req.image.format)) {
      throw new FlashError("bad_image", `avrdude flashes ${this.formats.join(", ")} images, not ${req.image.format}`);
    }
    const settings = avrdudeSettings(req.options, req.baud);
    const size = req.image.format === "bin" ? req.image.data.length : checkIntelHex(req.image.data).bytes;
    if (size === 0) throw new FlashError("bad_image", "empty image");
    const started = Date.now();
    // One signal for the whole call: the caller's cancel or our deadline, whichever comes first.
    const stop = new AbortController();
    const deadline = setTimeout(() => stop.abort(new FlashError("timeout", `flash did not finish within ${req.deadlineMs} ms`)), req.deadlineMs);
    const cancel = (): void => stop.abort(new FlashError("cancelled", "flash cancelled"));
    if (req.signal.aborted) cancel();
    req.signal.addEventListener("abort", cancel, { once: true });
    const dir = await mkdtemp(join(tmpdir(), "canopy-avrdude-"));
    try {
      const file = join(dir, req.image.format === "bin" ? "image.bin" : "image.hex");
      await writeFile(file, req.image.data, { mode: 0o600 });
      const args = avrdudeArgs(settings, req.port, file, avrdudeFileFormat(req.image.format));
      req.onProgress({ phase: "preparing", bytes: 0, total: size, detail: `avrdude ${args.join(" ")}` });
      let written = 0;
      for (let attempt = 1; ; attempt++) {
        try {
          written = await this.run(args, size, req, stop.signal);
          break;
        } catch (err) {
          // Only a bootloader that never answered is worth another go (an Uno's auto-reset timing
          // misses now and then); avrdude opens the port again, which resets the board again.
          if (!(err instanceof FlashError) || err.code !== "no_response" || attempt >= settings.attempts) throw err;
          req.onProgress({ phase: "preparing", bytes: 0, total: size, detail: `attempt ${attempt} of ${settings.attempts}: ${err.message}` });
        }
      }
      if (req.options?.["banner"] === "off") return { confirmed: false, bytesSent: written };
      req.onProgress({ phase: "booting", bytes: size, total: size, detail: "waiting for the firmware's hello" });
      const windowMs = Math.min(this.bannerWindowMs, Math.max(0, req.deadlineMs - (Date.now() - started)));
      const banner = await watchBanner({ io: this.io, port: req.port, baud: settings.appBaud, windowMs, signal: stop.signal }).catch((err: unknown) => {
        if (stop.signal.aborted) throw stop.signal.reason;
        throw new FlashError("no_response", `reading the banner on ${req.port} failed: ${(err as Error).message}`, { cause: err });
      });
      if (!banner) return { confirmed: false, bytesSent: written };
      const mcu = req.options?.["mcu"];
      const confirmed = banner.version === req.image.version && (mcu === undefined || banner.mcu === mcu);
      req.onProgress({ phase: "confirming", bytes: size, total: size, detail: `hello ${banner.mcu} ${banner.board} ${banner.version}` });
      return { bootedVersion: banner.version, confirmed, bytesSent: written };
    } catch (err) {
      throw stop.signal.aborted ? stop.signal.reason : err;
    } finally {
      clearTimeout(deadline);
      req.signal.removeEventListener("abort", cancel);
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Runs avrdude in its own process group; resolves with the bytes written, rejects with a FlashError. */
  private run(args: string[], size: number, req: FlashRequest, signal: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const out = new AvrdudeOutput(size, req.onProgress);
      const child = spawn(this.command, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.setEncoding("utf8").on("data", (s: string) => out.push(s));
      child.stderr.setEncoding("utf8").on("data", (s: string) => out.push(s));
      let killTimer: NodeJS.Timeout | undefined;
      const kill = (): void => {
        killGroup(child.pid, "SIGTERM");
        killTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), this.killGraceMs);
      };
      signal.addEventListener("abort", kill, { once: true });
      child.on("error", (err: NodeJS.ErrnoException) => {
        signal.removeEventListener("abort", kill);
        reject(new FlashError("tool_failed", err.code === "ENOENT" ? `${this.command} not found (install Debian's avrdude)` : `cannot run ${this.command}: ${err.message}`, { cause: err }));
      });
      child.on("close", (code, sig) => {
        signal.removeEventListener("abort", kill);
        if (killTimer) clearTimeout(killTimer);
        if (signal.aborted) reject(signal.reason);
        else if (code === 0) resolve(out.written || size);
        else {
          const { code: fc, reason } = classifyAvrdudeFailure(out.allLines());
          const last = out.tail(3).join(" / ");
          reject(new FlashError(fc, `${reason}: avrdude ${sig ? `killed by ${sig}` : `exited ${code}`}${last ? ` (${last})` : ""}`));
        }
      });
    });
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}
