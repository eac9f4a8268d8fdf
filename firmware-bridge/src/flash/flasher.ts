/**
 * One interface for every way of putting firmware on a microcontroller (the Canopy serial bootloader
 * over the binary link, avrdude/STK500, UF2, esptool …). The bridge picks a flasher by name, hands it
 * the verified image and an AbortSignal, and relays its progress events upstream. A flasher never
 * runs without a deadline: `deadlineMs` bounds the whole call, after which it must reject with a
 * `FlashError` of code "timeout" and leave the port closed.
 */
export type FlashPhase = "preparing" | "flashing" | "verifying" | "booting" | "confirming";

export interface FlashProgress {
  phase: FlashPhase;
  /** Bytes of the image written (flashing) or checked (verifying) so far. */
  bytes: number;
  total: number;
  /** Free text for logs, e.g. the tool's last line. */
  detail?: string;
}

export interface FlashImage {
  /** Raw image bytes (for hex formats: the file's text as bytes; the flasher parses what it needs). */
  data: Uint8Array;
  format: "bin" | "hex" | "avr-hex" | "uf2";
  sha256: string;
  version: string;
  board: string;
}

export interface FlashRequest {
  /** Serial device path of the MCU (e.g. /dev/ttyACM0, /dev/canopy/<id>, a socat pty). */
  port: string;
  baud?: number;
  image: FlashImage;
  signal: AbortSignal;
  deadlineMs: number;
  onProgress: (p: FlashProgress) => void;
  /** Flasher-specific options (e.g. avrdude part "m328p", programmer "arduino"). */
  options?: Record<string, string>;
}

export interface FlashResult {
  /** The version the MCU reports after boot, when the flasher can read it (banner, INFO, hello). */
  bootedVersion?: string;
  /** True when the flasher itself confirmed the new image runs (e.g. banner seen, CONFIRM received). */
  confirmed: boolean;
  /** Bytes actually sent (resends included), for rate figures. */
  bytesSent: number;
}

export type FlashErrorCode = "timeout" | "cancelled" | "verify_failed" | "no_response" | "tool_failed" | "bad_image";

export class FlashError extends Error {
  override readonly name = "FlashError";
  constructor(readonly code: FlashErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface Flasher {
  /** Stable name used in config and CLI (`canopy`, `avrdude`, `uf2`, `esptool`). */
  readonly name: string;
  /**
   * True when the target boots a new image on trial and reverts by itself unless it is confirmed (the
   * Canopy bootloader): an unconfirmed flash there is `rolled_back`. False for targets with no trial
   * boot (avrdude/optiboot): the new image stays, so an unconfirmed flash is `failed`, saying why.
   */
  readonly trialBoot: boolean;
  /** Image formats this flasher accepts. */
  readonly formats: ReadonlyArray<FlashImage["format"]>;
  flash(req: FlashRequest): Promise<FlashResult>;
}
