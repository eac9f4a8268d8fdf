import { z } from "zod";
import { CanopyError, ErrorCode } from "../errors.js";
import { checkId } from "../ids.js";
import { Id, Timestamp } from "./common.js";

/**
 * Firmware images and flashing (issue 12). Images live in the hub object store `firmware` under
 * `<board>/<version>` with their manifest in the object's metadata; a flash is the device command
 * `firmware.flash` (exactly once, TTL, cancel); its progress is `FlashEvent`s on
 * `up.<dev>.evt.mcu.<mcu>.flash` and its result the final `FlashEvent`.
 */
export const FIRMWARE_FORMATS = ["bin", "hex", "uf2", "avr-hex"] as const;
export const FirmwareFormat = z.enum(FIRMWARE_FORMATS);
export type FirmwareFormat = z.infer<typeof FirmwareFormat>;

const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/;
export const FirmwareVersion = z.string().regex(VERSION_PATTERN, "must match ^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$");
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits");
/** Object store chunk size for images: small chunks make a resumed download re-fetch little. */
export const FIRMWARE_CHUNK_BYTES = 16 * 1024;

export const FirmwareManifest = z.object({
  board: Id,
  version: FirmwareVersion,
  format: FirmwareFormat,
  size: z.number().int().positive(),
  sha256: Sha256Hex,
  uploadedBy: z.string().max(128),
  uploadedAt: Timestamp,
  /** Ed25519 signature (base64url) of `firmwareSigningPayload(manifest)` by the fleet's signing key. */
  signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/, "must be an Ed25519 signature, 64 bytes base64url").optional(),
  /** Which key signed (its public key, base64url), so a device names the key it refused. */
  signedBy: z.string().optional(),
});
export type FirmwareManifest = z.infer<typeof FirmwareManifest>;

/** An Ed25519 public key as config key `firmware.signingKey` holds it: 32 raw bytes, base64url. */
export const SIGNING_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * The bytes an image's signature covers: what the device checks before it flashes (the sha256 binds
 * the image; board, version and format stop a valid image being passed off as another). One field per
 * line (none can hold a newline), so no two manifests share a payload.
 */
export function firmwareSigningPayload(m: Pick<FirmwareManifest, "board" | "version" | "format" | "size" | "sha256">): string {
  return `canopy-firmware-v1\n${m.board}\n${m.version}\n${m.format}\n${m.size}\n${m.sha256}\n`;
}

export function firmwareObjectName(board: string, version: string): string {
  return `${checkId(board, "board")}/${checkVersion(version)}`;
}

export function checkVersion(v: string): string {
  if (!VERSION_PATTERN.test(v)) throw new CanopyError(ErrorCode.InvalidInput, `firmware version ${JSON.stringify(v)}: must match ${VERSION_PATTERN.source}`);
  return v;
}

/** `--firmware BOARD@VERSION` */
export function parseFirmwareRef(ref: string): { board: string; version: string } {
  const at = ref.indexOf("@");
  if (at <= 0) throw new CanopyError(ErrorCode.InvalidInput, `--firmware ${JSON.stringify(ref)}: expected BOARD@VERSION`);
  return { board: checkId(ref.slice(0, at), "board"), version: checkVersion(ref.slice(at + 1)) };
}

/** Every flash passes these states in order; the last three are terminal and always carry `detail`. */
export const FLASH_STATES = ["queued", "downloading", "flashing", "verifying", "booting", "confirmed", "rolled_back", "failed"] as const;
export const FlashState = z.enum(FLASH_STATES);
export type FlashState = z.infer<typeof FlashState>;
export const FLASH_TERMINAL: ReadonlySet<FlashState> = new Set<FlashState>(["confirmed", "rolled_back", "failed"]);

/** Args of the `firmware.flash` command (what `canopy flash` sends). */
export const FlashArgs = z.object({
  mcu: Id,
  board: Id,
  version: FirmwareVersion,
  sha256: Sha256Hex,
  size: z.number().int().positive(),
  format: FirmwareFormat,
  /** Flasher plugin; `canopy` = the Canopy serial bootloader over the binary link. */
  flasher: z.string().regex(/^[a-z0-9-]{1,32}$/).default("canopy"),
  /** Download and verify now, write to the MCU at this time (ms since epoch, device clock). */
  applyAt: Timestamp.optional(),
  /** How long the new image has to confirm before the bootloader reverts. */
  confirmWithinMs: z.number().int().min(500).max(600_000).default(15_000),
  /** The manifest's signature: checked on the device when the fleet has a signing key. */
  signature: z.string().max(128).optional(),
});
export type FlashArgs = z.infer<typeof FlashArgs>;
export type FlashArgsInput = z.input<typeof FlashArgs>;

/** `up.<dev>.evt.mcu.<mcu>.flash`: progress and the end of one flash (`id` = the command id). */
export const FlashEvent = z.object({
  id: Id,
  mcu: Id,
  state: FlashState,
  version: FirmwareVersion,
  sha256: Sha256Hex,
  bytes: z.number().int().nonnegative().default(0),
  total: z.number().int().nonnegative().default(0),
  /** Bytes per second over the current phase. */
  rate: z.number().nonnegative().default(0),
  /** Why (every terminal state), or what is going on. */
  detail: z.string().default(""),
  /** The version the MCU runs after the flash (terminal states). */
  runningVersion: z.string().optional(),
  at: Timestamp,
});
export type FlashEvent = z.infer<typeof FlashEvent>;

/** Agent → bridge (core request on the leaf): flash a verified image file to one MCU. */
export const BridgeFlashRequest = z.object({
  id: Id,
  path: z.string().min(1),
  board: Id,
  version: FirmwareVersion,
  sha256: Sha256Hex,
  size: z.number().int().positive(),
  format: FirmwareFormat,
  flasher: z.string(),
  confirmWithinMs: z.number().int().positive(),
  deadlineMs: z.number().int().positive(),
});
export type BridgeFlashRequest = z.infer<typeof BridgeFlashRequest>;

/** Bridge → agent: how the flash ended. */
export const BridgeFlashResult = z.object({
  state: z.enum(["confirmed", "rolled_back", "failed"]),
  detail: z.string(),
  runningVersion: z.string().optional(),
  bytesSent: z.number().int().nonnegative().default(0),
});
export type BridgeFlashResult = z.infer<typeof BridgeFlashResult>;

/** What the bridge remembers of an MCU's last flash (shown by `canopy mcu list`). */
export const McuFlashRecord = z.object({
  state: FlashState,
  version: z.string(),
  sha256: z.string(),
  at: Timestamp,
  detail: z.string().default(""),
});
export type McuFlashRecord = z.infer<typeof McuFlashRecord>;

/**
 * A flash that did not end `confirmed` fails its command with this message, so `cmd status` and
 * `canopy flash` both show the flash state and why: `rolled_back: <detail>` / `failed: <detail>`.
 */
export function flashFailureMessage(state: "rolled_back" | "failed", detail: string): string {
  return `${state}: ${detail}`;
}

export function parseFlashFailure(message: string): { state: "rolled_back" | "failed"; detail: string } {
  const m = /^(rolled_back|failed): ([\s\S]*)$/.exec(message);
  return m ? { state: m[1] as "rolled_back" | "failed", detail: m[2] ?? "" } : { state: "failed", detail: message };
}
