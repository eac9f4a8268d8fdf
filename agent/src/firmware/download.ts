import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { Assets, CanopyError, ErrorCode, HUB_DOMAIN, firmwareObjectName, sleep } from "@canopy/protocol";

export interface DownloadRequest {
  board: string;
  version: string;
  sha256: string;
  size: number;
}

export interface DownloadProgress {
  bytes: number;
  total: number;
  /** Bytes already on disk when this attempt started (a resume). */
  resumedAt: number;
}

interface PartState {
  nuid: string;
  /** Stream sequence to look for the next chunk from. */
  nextSeq: number;
  bytes: number;
}

/** Images kept on disk; the oldest go first. */
const CACHE_MAX_IMAGES = 8;
const CACHE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Firmware downloads from the hub's `firmware` object store, resumable: the stock `get()` always
 * restarts at chunk 0, so chunks are read one by one by stream sequence (`next_by_subj` on the
 * chunk subject, through the hub domain) and appended to `<sha>.part`; after each chunk the part file
 * is synced and `<sha>.json` records the next sequence, so a cut link or an agent restart continues
 * from the last stored chunk. The whole image is then checked against the manifest's sha256 and kept
 * as `<sha>.img` (a bounded cache).
 */
export class FirmwareCache {
  constructor(private readonly dir: string, private readonly nc: NatsConnection, private readonly chunkDelayMs = 0) {}

  imagePath(sha256: string): string {
    return join(this.dir, `${sha256}.img`);
  }

  async fetch(req: DownloadRequest, onProgress: (p: DownloadProgress) => void, signal: AbortSignal): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const done = this.imagePath(req.sha256);
    if (await exists(done)) {
      onProgress({ bytes: req.size, total: req.size, resumedAt: req.size });
      return done;
    }
    // checkAPI off: the account-info probe ($JS.hub.API.INFO) is not in a device's permissions.
    const js = jetstream(this.nc, { domain: HUB_DOMAIN, checkAPI: false });
    const os = await new Objm(js).open(Assets.objFirmware);
    const name = firmwareObjectName(req.board, req.version);
    const info = await os.info(name);
    if (!info || info.deleted) throw new CanopyError(ErrorCode.NotFound, `firmware ${name} is not in the store`);
    if (info.size !== req.size) throw new CanopyError(ErrorCode.Conflict, `firmware ${name} is ${info.size} bytes in the store, the flash asked for ${req.size}`);
    const part = join(this.dir, `${req.sha256}.part`);
    const statePath = join(this.dir, `${req.sha256}.json`);
    let st = await readState(statePath);
    if (!st || st.nuid !== info.nuid) st = { nuid: info.nuid, nextSeq: 1, bytes: 0 };
    // Anything past the recorded length was written before a crash but never recorded: drop it.
    await writeFile(part, "", { flag: "a" });
    await truncate(part, st.bytes);
    const resumedAt = st.bytes;
    onProgress({ bytes: st.bytes, total: req.size, resumedAt });
    const jsm = await jetstreamManager(this.nc, { domain: HUB_DOMAIN, checkAPI: false });
    const stream = `OBJ_${Assets.objFirmware}`;
    const subject = `$O.${Assets.objFirmware}.C.${info.nuid}`;
    const fh = await open(part, "a");
    try {
      while (st.bytes < req.size) {
        if (signal.aborted) throw new CanopyError(ErrorCode.Cancelled, "download cancelled");
        const m = await jsm.direct.getMessage(stream, { seq: st.nextSeq, next_by_subj: subject });
        if (!m) throw new CanopyError(ErrorCode.NotFound, `chunk after sequence ${st.nextSeq} of ${name} is missing`);
        await fh.write(m.data);
        await fh.sync();
        st = { nuid: info.nuid, nextSeq: m.seq + 1, bytes: st.bytes + m.data.length };
        await writeFile(`${statePath}.tmp`, JSON.stringify(st));
        await rename(`${statePath}.tmp`, statePath);
        onProgress({ bytes: st.bytes, total: req.size, resumedAt });
        if (this.chunkDelayMs > 0) await sleep(this.chunkDelayMs, signal);
      }
    } finally {
      await fh.close();
    }
    const sha = await sha256File(part);
    if (sha !== req.sha256 || st.bytes !== req.size) {
      await rm(part, { force: true });
      await rm(statePath, { force: true });
      throw new CanopyError(ErrorCode.Conflict, `downloaded ${name} hashes ${sha}, expected ${req.sha256}: not flashed`);
    }
    await rename(part, done);
    await rm(statePath, { force: true });
    await this.evict(done).catch(() => {});
    return done;
  }

  /** Keeps at most CACHE_MAX_IMAGES / CACHE_MAX_BYTES of finished images, newest first. */
  private async evict(keep: string): Promise<void> {
    const files = await Promise.all(
      (await readdir(this.dir)).filter((f) => f.endsWith(".img")).map(async (f) => ({ path: join(this.dir, f), ...(await stat(join(this.dir, f))) })),
    );
    files.sort((a, b) => b.mtimeMs - a.mtimeMs);
    let bytes = 0;
    for (const [i, f] of files.entries()) {
      bytes += f.size;
      if (f.path !== keep && (i >= CACHE_MAX_IMAGES || bytes > CACHE_MAX_BYTES)) await rm(f.path, { force: true });
    }
  }
}

async function readState(path: string): Promise<PartState | undefined> {
  try {
    const v = JSON.parse(await readFile(path, "utf8")) as PartState;
    return typeof v.nuid === "string" && Number.isInteger(v.nextSeq) && Number.isInteger(v.bytes) ? v : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

