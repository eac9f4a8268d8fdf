import { spawn, execFile, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { CanopyError, ErrorCode } from "../errors.js";

const execFileP = promisify(execFile);

export interface ServerPorts {
  client?: number;
  leaf?: number;
  http?: number;
}

/**
 * The oldest nats-server Canopy runs on. 2.14.0 is the first line that checks permissions on messages
 * arriving over a leaf link (older servers let a leaf holding one device's credentials publish into
 * another device's subjects and delete hub streams), has JetStream `sync_interval`, and does not wedge
 * its store on a full disk. Debian 12 ships 2.9.10 and Debian 13 2.10.27: both are refused.
 */
export const MIN_NATS_SERVER = "2.14.0";

/** The nats-server binary: `CANOPY_NATS_SERVER` or `nats-server` on PATH. */
export function natsServerBin(): string {
  return process.env.CANOPY_NATS_SERVER || "nats-server";
}

const checked = new Map<string, Promise<string>>();

/**
 * Resolves with the server's version when it is at least MIN_NATS_SERVER; otherwise a clear error
 * naming the fix. Memoised per binary: every server start calls it.
 */
export function requireNatsServer(bin = natsServerBin()): Promise<string> {
  let p = checked.get(bin);
  if (!p) {
    p = natsServerVersion(bin).then((v) => {
      if (!versionAtLeast(v, MIN_NATS_SERVER)) {
        throw new CanopyError(
          ErrorCode.Unavailable,
          `nats-server ${v} (${bin}) is older than ${MIN_NATS_SERVER}, which Canopy needs (leaf-link permission checks, ` +
            `JetStream sync_interval, full-disk recovery). Install a newer one with: sudo bash deploy/scripts/ensure-deps.sh ` +
            `(fetches Debian testing's nats-server), or point CANOPY_NATS_SERVER at one.`,
        );
      }
      return v;
    });
    p.catch(() => checked.delete(bin));
    checked.set(bin, p);
  }
  return p;
}

export interface NatsServerOptions {
  configFile: string;
  /** Binary to run; default natsServerBin(). */
  bin?: string;
  /** Every log line of the server, for the caller to route (pino, file, test output). */
  onLog?: (line: string) => void;
  /** Give up waiting for "Server is ready" after this long. */
  readyTimeoutMs?: number;
}

/**
 * One run of `nats-server -c <config>`: starts it, waits for "Server is ready", reads back the ports it
 * bound (a port of -1 lets the server choose), and stops it. The child stays in the caller's process
 * group on purpose: killing an agent's group must take its leaf server down with it.
 */
export class NatsServerProcess {
  readonly ports: ServerPorts = {};
  private child: ChildProcess | undefined;
  private exitPromise: Promise<number | null> | undefined;

  constructor(private readonly opts: NatsServerOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<ServerPorts> {
    const bin = this.opts.bin ?? natsServerBin();
    await requireNatsServer(bin);
    const child = spawn(bin, ["-c", this.opts.configFile], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.exitPromise = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    const errored = new Promise<never>((_, reject) =>
      child.once("error", (err) =>
        reject(
          new CanopyError(
            ErrorCode.Unavailable,
            `cannot run nats-server (${err.message}); install it with: sudo bash deploy/scripts/ensure-deps.sh`,
            { cause: err },
          ),
        ),
      ),
    );
    const tail: string[] = [];
    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        this.parsePorts(line);
        if (line.includes("Server is ready")) onReady();
        this.opts.onLog?.(line);
      });
    }
    const exited = this.exitPromise.then((code) => {
      throw new CanopyError(
        ErrorCode.Unavailable,
        `nats-server exited (code ${code}) before it was ready:\n${tail.join("\n")}`,
      );
    });
    const timeoutMs = this.opts.readyTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CanopyError(ErrorCode.Timeout, `nats-server not ready after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([ready, errored, exited, timeout]);
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    } finally {
      clearTimeout(timer);
    }
    exited.catch(() => {});
    errored.catch(() => {});
    return this.ports;
  }

  /** Resolves with the exit code when the server exits for any reason. */
  exited(): Promise<number | null> {
    return this.exitPromise ?? Promise.resolve(null);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await once(child, "exit").catch(() => {});
    clearTimeout(timer);
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.child?.kill(signal);
  }

  private parsePorts(line: string): void {
    const m = /(Listening for (client|leafnode) connections on|Starting http monitor on) .*:(\d+)\s*$/.exec(line);
    if (!m) return;
    const port = Number(m[3]);
    if (m[2] === "client") this.ports.client = port;
    else if (m[2] === "leafnode") this.ports.leaf = port;
    else this.ports.http = port;
  }
}

/** `nats-server --version` → "2.15.1". */
export async function natsServerVersion(bin = natsServerBin()): Promise<string> {
  try {
    const { stdout } = await execFileP(bin, ["--version"]);
    return /v?(\d+\.\d+\.\d+)/.exec(stdout)?.[1] ?? stdout.trim();
  } catch (err) {
    throw new CanopyError(
      ErrorCode.Unavailable,
      `nats-server not found (${bin}); install it with: sudo bash deploy/scripts/ensure-deps.sh`,
      { cause: err },
    );
  }
}

/** True when `version` (x.y.z) is at least `min`. */
export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}
