import { freePort as sharedFreePort } from "@canopy/protocol";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A port free on 127.0.0.1, below the ephemeral range (see `freePort` in @canopy/protocol). */
export const freePort = (): Promise<number> => sharedFreePort("127.0.0.1");

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function tempDir(prefix = "canopy-test-"): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
