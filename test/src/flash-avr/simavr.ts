import { execFile, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "@canopy/protocol";

const BUILD_SH = fileURLToPath(new URL("../../native/build.sh", import.meta.url));

/** Runs test/native/build.sh (compiles from the repo's C sources; outputs in test/native/build/). */
export function buildNative(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", [BUILD_SH, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`build.sh ${args.join(" ")} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/** Builds the AVR test app that says `hello <mcuId> uno <version>`; returns the .hex path. */
export function buildAvrApp(version: string, opts: { pad?: number; mcuId?: string } = {}): Promise<string> {
  return buildNative("app", version, String(opts.pad ?? 0), opts.mcuId ?? "avr-1");
}

/**
 * An ATmega328P in simavr running Debian's optiboot, its UART on a pty reachable at `port` (a symlink
 * in the caller's temp dir). Opening the port resets it into the bootloader, as an Uno's DTR does.
 */
export class SimAvr {
  private stderr = "";

  private constructor(readonly port: string, private readonly child: ChildProcess) {
    child.stderr?.setEncoding("utf8").on("data", (s: string) => {
      this.stderr = (this.stderr + s).slice(-8192);
    });
  }

  static async start(dir: string, name = "uno"): Promise<SimAvr> {
    const [harness, boot] = await Promise.all([buildNative("harness"), buildNative("optiboot")]);
    const link = join(dir, name);
    const child = spawn(harness, ["--boot", boot, "--link", link], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    const sim = new SimAvr(link, child);
    try {
      await waitFor(() => /^pty \S+$/m.test(out) || child.exitCode !== null, { timeoutMs: 10_000, what: "simavr-uart pty" });
    } catch (err) {
      await sim.stop();
      throw err;
    }
    if (child.exitCode !== null) throw new Error(`simavr-uart exited ${child.exitCode}: ${sim.log()}`);
    return sim;
  }

  /** The harness's own messages (resets, bootloader/app transitions): for failure messages. */
  log(): string {
    return this.stderr;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 3000);
    await gone;
    clearTimeout(t);
  }
}
