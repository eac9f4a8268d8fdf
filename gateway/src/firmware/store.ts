import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, type ObjectStore } from "@nats-io/obj";
import {
  Assets,
  CanopyError,
  ErrorCode,
  FIRMWARE_CHUNK_BYTES,
  FirmwareManifest,
  firmwareObjectName,
  type FirmwareFormat,
} from "@canopy/protocol";
import { checkFormat } from "./formats.js";

/**
 * Firmware images in the hub object store `firmware`, one object per `<board>/<version>`, the
 * manifest in the object's metadata (`manifest` = JSON). Images are stored in small chunks
 * (FIRMWARE_CHUNK_BYTES) so that a device's resumed download re-fetches little.
 */
export class FirmwareStore {
  private constructor(private readonly os: ObjectStore) {}

  static async open(nc: NatsConnection): Promise<FirmwareStore> {
    return new FirmwareStore(await new Objm(nc).open(Assets.objFirmware));
  }

  /** Validates everything first (format, expected hash, not already there), then uploads. */
  static prepare(data: Uint8Array, o: { board: string; version: string; format: FirmwareFormat; sha256?: string; by: string }): FirmwareManifest {
    firmwareObjectName(o.board, o.version);
    checkFormat(data, o.format);
    const sha256 = createHash("sha256").update(data).digest("hex");
    if (o.sha256 !== undefined && o.sha256.toLowerCase() !== sha256) {
      throw new CanopyError(ErrorCode.InvalidInput, `--sha256 ${o.sha256} does not match the file (sha256 ${sha256}); nothing uploaded`);
    }
    return FirmwareManifest.parse({ board: o.board, version: o.version, format: o.format, size: data.length, sha256, uploadedBy: o.by, uploadedAt: Date.now() });
  }

  async upload(data: Uint8Array, m: FirmwareManifest): Promise<FirmwareManifest> {
    const name = firmwareObjectName(m.board, m.version);
    const existing = await this.os.info(name);
    if (existing && !existing.deleted) {
      throw new CanopyError(ErrorCode.AlreadyExists, `firmware ${name} already exists; versions are immutable (rm it first)`);
    }
    await this.os.putBlob({ name, description: `${m.board} ${m.version}`, metadata: { manifest: JSON.stringify(m) }, options: { max_chunk_size: FIRMWARE_CHUNK_BYTES } }, data);
    return m;
  }

  async get(board: string, version: string): Promise<FirmwareManifest | undefined> {
    const info = await this.os.info(firmwareObjectName(board, version));
    return info && !info.deleted ? parseManifest(info.metadata) : undefined;
  }

  async list(): Promise<FirmwareManifest[]> {
    const out: FirmwareManifest[] = [];
    for (const info of await this.os.list()) {
      const m = parseManifest(info.metadata);
      if (m && !info.deleted) out.push(m);
    }
    return out.sort((a, b) => a.board.localeCompare(b.board) || b.uploadedAt - a.uploadedAt);
  }

  async remove(board: string, version: string): Promise<boolean> {
    const name = firmwareObjectName(board, version);
    const info = await this.os.info(name);
    if (!info || info.deleted) return false;
    await this.os.delete(name);
    return true;
  }
}

function parseManifest(meta: Record<string, string> | undefined): FirmwareManifest | undefined {
  try {
    const r = FirmwareManifest.safeParse(JSON.parse(meta?.["manifest"] ?? "null"));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
