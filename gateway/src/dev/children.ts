import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { once } from "node:events";

/**
 * Child `canopy` processes of the demo (agents, bridges, simulators). They stay in our process group,
 * so Ctrl-C in the terminal reaches them too; stopAll() also signals them and waits, so nothing is
 * left behind (their own nats-servers stop with them).
 */
export class Children {
  private readonly procs: ChildProcess[] = [];

  constructor(private readonly bin: string, private readonly onLine: (name: string, line: string) => void) {}

  start(name: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(process.execPath, [this.bin, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    for (const s of [child.stdout, child.stderr]) {
      if (s) createInterface({ input: s }).on("line", (l) => this.onLine(name, l));
    }
    this.procs.push(child);
    return child;
  }

  /** A non-canopy helper process (socat); undefined when the program is missing. */
  spawnRaw(cmd: string, args: string[]): ChildProcess | undefined {
    try {
      const child = spawn(cmd, args, { stdio: "ignore" });
      child.on("error", () => {});
      this.procs.push(child);
      return child;
    } catch {
      return undefined;
    }
  }

  /** Resolves with the first line matching `re` from that child, or rejects when it exits first. */
  waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs} ms`)), timeoutMs);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`process exited (code ${code}) before it was ready`));
      };
      child.once("exit", onExit);
      for (const s of [child.stdout, child.stderr]) {
        if (!s) continue;
        createInterface({ input: s }).on("line", (l) => {
          if (re.test(l)) {
            clearTimeout(timer);
            child.off("exit", onExit);
            resolve(l);
          }
        });
      }
    });
  }

  async stopAll(graceMs = 8_000): Promise<void> {
    await Promise.all(
      this.procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        p.kill("SIGTERM");
        const timer = setTimeout(() => p.kill("SIGKILL"), graceMs);
        await once(p, "exit").catch(() => {});
        clearTimeout(timer);
      }),
    );
  }
}
