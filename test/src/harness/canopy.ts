import { spawn, type ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { delay } from "@canopy/protocol";

/** The repo's `bin/canopy.js`: e2e tests run the real CLI, compiled, as users do. */
export const CANOPY_BIN = fileURLToPath(new URL("../../../bin/canopy.js", import.meta.url));

/**
 * `hub start` and `dev up` write a context under XDG_CONFIG_HOME: CLI processes started by tests get a
 * per-test-process temporary one unless the test names its own, so nothing lands in the real home.
 */
export const TEST_CONFIG_HOME = process.env.XDG_CONFIG_HOME ?? join(tmpdir(), `canopy-test-config-${process.pid}`);

function childEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  return { ...process.env, XDG_CONFIG_HOME: TEST_CONFIG_HOME, ...env };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to completion (bounded by `timeoutMs`). */
export function runCanopy(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CANOPY_BIN, ...args], {
      env: childEnv(opts.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`canopy ${args.join(" ")} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Parses `--json` output; fails with the raw text when it is not JSON. */
export function json<T = unknown>(r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`expected JSON (exit ${r.code})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/**
 * A long-running CLI process (hub, gateway, agent, bridge) in its own process group, so a test can
 * SIGKILL the whole group (the agent and its leaf nats-server) as a power cut would.
 */
export class CanopyProcess {
  readonly output: string[] = [];
  /** Exited, and its stdout and stderr are read to the end. */
  private ended = false;
  private readonly child: ChildProcess;
  private readonly exitPromise: Promise<number | null>;

  constructor(readonly args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CANOPY_BIN, ...args], {
      env: childEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.exitPromise = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    this.child.once("close", () => (this.ended = true));
    const onData = (d: Buffer): void => {
      for (const line of d.toString().split("\n")) if (line) this.output.push(line);
      if (this.output.length > 2000) this.output.splice(0, this.output.length - 2000);
    };
    this.child.stdout?.on("data", onData);
    this.child.stderr?.on("data", onData);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): Promise<number | null> {
    return this.exitPromise;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * The first output line matching `re`. Fails at the deadline, or as soon as the process has ended
   * without printing it, with the output as it stood then.
   */
  async waitForOutput(re: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.output.find((l) => re.test(l));
      if (line !== undefined) return line;
      const why = this.ended
        ? `the process ended (${this.child.exitCode ?? this.child.signalCode}) without printing it`
        : Date.now() >= deadline ? `timed out after ${timeoutMs} ms (process still running)` : undefined;
      if (why) throw new Error(`waiting for output ${re} from canopy ${this.args.join(" ")}: ${why}\n--- last output:\n${this.output.slice(-40).join("\n")}`);
      await delay(50);
    }
  }

  /** Signals the whole process group (the daemon and every child it started). */
  killGroup(signal: NodeJS.Signals = "SIGKILL"): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM, then SIGKILL of the group after `graceMs`; resolves when the leader exited. */
  async stop(graceMs = 8_000): Promise<void> {
    if (!this.running) {
      this.killGroup("SIGKILL");
      return;
    }
    this.killGroup("SIGTERM");
    const timer = setTimeout(() => this.killGroup("SIGKILL"), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
    this.killGroup("SIGKILL");
  }
}
