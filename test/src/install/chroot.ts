import { execFile, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { waitFor } from "@canopy/protocol";

/** The repository root (the test runs the repo's own deploy/ scripts). */
export const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const CHROOT_SH = fileURLToPath(new URL("../../src/install/chroot.sh", import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded), never throwing on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 600_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`));
      else resolve({ code: typeof err?.code === "number" ? err.code : 0, stdout, stderr });
    });
  });
}

export async function must(cmd: string, args: string[], timeoutMs?: number): Promise<Run> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/**
 * A fresh Debian root (overlay over the cached debootstrap root, see chroot.sh) to install into.
 * Commands run in it with `chroot`; a process started inside is tracked and killed by `down()`.
 */
export class Chroot {
  private readonly procs: ChildProcess[] = [];

  private constructor(readonly dir: string, readonly root: string) {}

  static async up(dir: string): Promise<Chroot> {
    const r = await must("bash", [CHROOT_SH, "up", dir], 900_000);
    return new Chroot(dir, r.stdout.trim().split("\n").pop() ?? `${dir}/root`);
  }

  exec(script: string, timeoutMs?: number): Promise<Run> {
    return run("chroot", [this.root, "/bin/sh", "-c", `PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin; export PATH; ${script}`], timeoutMs);
  }

  /** A long-running process inside, as `user`, in its own process group; lines of output collected. */
  spawnAs(user: string, command: string): { proc: ChildProcess; output: string[]; waitFor(re: RegExp, ms: number): Promise<string> } {
    const proc = spawn("chroot", [this.root, "runuser", "-u", user, "--", "/bin/sh", "-c", `PATH=/usr/local/bin:/usr/bin:/bin; export PATH; exec ${command}`], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.procs.push(proc);
    const output: string[] = [];
    const onData = (d: Buffer): void => {
      output.push(...d.toString().split("\n").filter(Boolean));
      if (output.length > 2_000) output.splice(0, output.length - 2_000);
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    return {
      proc,
      output,
      waitFor: (re, ms) => waitFor(() => output.find((l) => re.test(l)), { timeoutMs: ms, what: `${re} from ${command}\n${output.slice(-20).join("\n")}` }),
    };
  }

  /**
   * Stops a process started with spawnAs and waits until its whole group is gone (the agent's leaf
   * nats-server can outlive the agent by a moment, and `userdel` refuses a user with a process left,
   * as systemd's stop waits for the unit's cgroup to empty): SIGTERM, SIGKILL after `graceMs`.
   */
  async stop(proc: ChildProcess, graceMs = 8_000): Promise<void> {
    const pgid = proc.pid ?? 0;
    const kill = (sig: NodeJS.Signals | 0): boolean => {
      try {
        process.kill(-pgid, sig);
        return true;
      } catch {
        return false; // the group is empty
      }
    };
    if (pgid <= 0 || !kill(0)) return;
    const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once("exit", r));
    kill("SIGTERM");
    const t = setTimeout(() => kill("SIGKILL"), graceMs);
    await exited;
    await waitFor(() => !kill(0), { timeoutMs: graceMs + 5_000, intervalMs: 50, what: `process group ${pgid} to exit` }).catch(() => {
      kill("SIGKILL");
    });
    clearTimeout(t);
  }

  async down(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.stop(p, 2_000)));
    await run("bash", [CHROOT_SH, "down", this.dir]);
  }
}

/**
 * Every path under the root with mode, owner and size and mtime, minus what a run of anything
 * touches (proc, dev, tmp, logs, apt's caches). Two equal snapshots: nothing changed.
 */
export async function snapshot(c: Chroot, opts: { mtimes: boolean; exclude?: string[] }): Promise<Map<string, string>> {
  const skip = ["./proc", "./dev", "./sys", "./run", "./tmp", "./root", "./var/log", "./var/cache", "./var/tmp", ...(opts.exclude ?? [])];
  const pruned = skip.map((p) => `-path '${p}'`).join(" -o ");
  const fmt = opts.mtimes ? "%p\\t%m %u %g %s %T@\\n" : "%p\\t%m %u %g\\n";
  const r = await must("sh", ["-c", `cd '${c.root}' && find . \\( ${pruned} \\) -prune -o -printf '${fmt}'`]);
  const out = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const [path, rest] = line.split("\t");
    if (path && rest !== undefined) out.set(path, rest);
  }
  return out;
}

export function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} → ${b.get(k) ?? "(gone)"}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: (new) ${v}`);
  return out;
}
