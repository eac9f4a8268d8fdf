import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { waitFor } from "@canopy/protocol";

const SCRIPT = fileURLToPath(new URL("../../native/volatilefs.py", import.meta.url));
/** Debian's python3 (python3-fusepy lives in its dist-packages), not whatever python3 is first on PATH. */
const PYTHON = "/usr/bin/python3";

export interface PowerCutStats {
  writes: number;
  syncs: number;
  synced_writes: number;
  /** Writes not yet fsynced when the power went: undone. */
  dropped_writes: number;
  dropped_bytes: number;
  files_rolled_back: number;
}

/** Why the power-cut test cannot run here, or undefined when it can (root, /dev/fuse, python3-fusepy). */
function volatileFsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to mount FUSE";
  if (!existsSync("/dev/fuse")) return "no /dev/fuse";
  if (!existsSync("/usr/lib/python3/dist-packages/fusepy.py")) return "python3-fusepy missing (deploy/scripts/ensure-deps.sh installs it)";
  return undefined;
}

/** Fails (never skips) a power-cut test on a machine that cannot run it, naming what is missing. */
export function requireVolatileFs(): void {
  const why = volatileFsUnavailable();
  if (why) throw new Error(`the power-cut test cannot run on this machine: ${why}`);
}

function mounted(path: string): boolean {
  return readFileSync("/proc/self/mounts", "utf8").split("\n").some((l) => l.split(" ")[1] === path);
}

/**
 * test/native/volatilefs.py mounted over a directory: a disk whose writes are lost unless fsynced.
 * `cut()` is the power switch: every write not yet synced is undone, the file system goes away.
 */
export class VolatileFs {
  private readonly out: string[] = [];

  private constructor(
    readonly backing: string,
    readonly mountpoint: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on("data", (d: Buffer) => this.out.push(...d.toString().split("\n").filter(Boolean)));
    child.stderr?.on("data", (d: Buffer) => this.out.push(...d.toString().split("\n").filter(Boolean)));
  }

  static async mount(backing: string, mountpoint: string): Promise<VolatileFs> {
    await mkdir(backing, { recursive: true });
    await mkdir(mountpoint, { recursive: true });
    const child = spawn(PYTHON, [SCRIPT, backing, mountpoint], { stdio: ["ignore", "pipe", "pipe"] });
    const fs = new VolatileFs(backing, mountpoint, child);
    await waitFor(() => mounted(mountpoint) || child.exitCode !== null, { timeoutMs: 10_000, what: `volatilefs on ${mountpoint}` });
    if (!mounted(mountpoint)) throw new Error(`volatilefs did not mount: ${fs.out.join("\n")}`);
    return fs;
  }

  /** Power off: unsynced writes undone, then unmounted. Kill the writers first. */
  async cut(): Promise<PowerCutStats> {
    await writeFile(`${this.mountpoint}/.power-cut`, "1");
    const line = await waitFor(() => this.out.find((l) => l.includes('"power-cut"')), { timeoutMs: 10_000, what: "volatilefs power-cut report" });
    await this.unmount();
    return JSON.parse(line) as PowerCutStats;
  }

  async unmount(): Promise<void> {
    if (mounted(this.mountpoint)) execFileSync("umount", ["-l", this.mountpoint]);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000))]);
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    }
  }
}
