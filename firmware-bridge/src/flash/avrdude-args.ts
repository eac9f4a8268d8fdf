import { CanopyError, ErrorCode } from "@canopy/protocol";
import type { FlashImage } from "./flasher.js";

/** What avrdude needs besides the port and the file: `FlashRequest.options` keys of the same names. */
export interface AvrdudeSettings {
  /** avrdude part id (`-p`), e.g. m328p, m2560, t85. */
  part: string;
  /** avrdude programmer id (`-c`): `arduino` = STK500v1 as spoken by optiboot. */
  programmer: string;
  /** Bootloader baud rate (`-b`): 115200 for an Uno's optiboot, 57600 for older Nanos. */
  baud: number;
  /** The application's baud rate, for reading its banner after the flash. */
  appBaud: number;
  /** avrdude runs at most this often when the bootloader does not answer. */
  attempts: number;
}

export const AVRDUDE_DEFAULTS = { part: "m328p", programmer: "arduino", baud: 115200, attempts: 2 } as const;

const NAME = /^[A-Za-z0-9_+-]{1,32}$/;

/**
 * Settings from the request, validated at the door: they end up on avrdude's command line, so a value
 * that could read as another flag or a path is refused rather than quoted.
 */
export function avrdudeSettings(options: Record<string, string> | undefined, baud: number | undefined): AvrdudeSettings {
  const part = options?.["part"] ?? AVRDUDE_DEFAULTS.part;
  const programmer = options?.["programmer"] ?? AVRDUDE_DEFAULTS.programmer;
  const rate = baud ?? (options?.["baud"] !== undefined ? Number(options["baud"]) : AVRDUDE_DEFAULTS.baud);
  const appBaud = options?.["appBaud"] !== undefined ? Number(options["appBaud"]) : rate;
  const attempts = options?.["attempts"] !== undefined ? Number(options["attempts"]) : AVRDUDE_DEFAULTS.attempts;
  for (const [key, value] of [["part", part], ["programmer", programmer]] as const) {
    if (!NAME.test(value) || value.startsWith("-")) {
      throw new CanopyError(ErrorCode.InvalidInput, `avrdude ${key} ${JSON.stringify(value)}: expected a name like m328p / arduino`);
    }
  }
  for (const [key, value] of [["baud", rate], ["appBaud", appBaud]] as const) {
    if (!Number.isInteger(value) || value < 300 || value > 4_000_000) {
      throw new CanopyError(ErrorCode.InvalidInput, `avrdude ${key} ${JSON.stringify(options?.[key] ?? baud)}: expected an integer from 300 to 4000000`);
    }
  }
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 5) {
    throw new CanopyError(ErrorCode.InvalidInput, `avrdude attempts ${JSON.stringify(options?.["attempts"])}: expected 1 to 5`);
  }
  return { part, programmer, baud: rate, appBaud, attempts };
}

/** avrdude's file format letter for `-U flash:w:<file>:<fmt>`. */
export function avrdudeFileFormat(format: FlashImage["format"]): "i" | "r" {
  return format === "bin" ? "r" : "i";
}

/**
 * `avrdude -c arduino -b 115200 -p m328p -P <port> -U flash:w:<file>:i`. avrdude splits `-U` at ':'
 * (a drive letter aside), so the file path must not hold one; the caller writes the image to a temp
 * file it names itself.
 */
export function avrdudeArgs(s: AvrdudeSettings, port: string, file: string, fmt: "i" | "r"): string[] {
  if (file.includes(":")) throw new CanopyError(ErrorCode.InvalidInput, `avrdude image path ${file} must not contain ':'`);
  if (!port.startsWith("/")) throw new CanopyError(ErrorCode.InvalidInput, `serial port ${JSON.stringify(port)}: expected an absolute device path`);
  return ["-c", s.programmer, "-b", String(s.baud), "-p", s.part, "-P", port, "-U", `flash:w:${file}:${fmt}`];
}
