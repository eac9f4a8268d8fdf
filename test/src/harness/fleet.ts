import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { fastCredsAuthenticator } from "@canopy/protocol/nats/creds";
import { Subjects, waitFor } from "@canopy/protocol";
import { CanopyProcess, runCanopy, type RunResult } from "./canopy.js";
import { LinkProxy } from "./proxy.js";
import { freePort, tempDir, type TempDir } from "./ports.js";

export interface HubHandle {
  proc: CanopyProcess;
  client: string;
  leaf: string;
  http: string;
  leafPort: number;
  /** Admin credentials the hub made (`<data>/creds/admin.creds`). */
  creds: string;
  /** The fleet CA (leaf-link TLS). */
  ca: string;
}

export interface AgentHandle {
  device: string;
  proc: CanopyProcess;
  /** nats://127.0.0.1:PORT of the device's leaf server. */
  leafUrl: string;
  dataDir: string;
  /** The hub link of this device goes through this proxy: cut() / restore() it. */
  link: LinkProxy;
}

/**
 * A whole fleet of real processes for e2e tests: `canopy hub start` (nats-server + gateway) and
 * `canopy agent`s (each with its own leaf nats-server), every port picked free, every dir temporary,
 * every device's hub link relayed through a LinkProxy so a test can cut it.
 */
export class Fleet {
  readonly agents = new Map<string, AgentHandle>();
  hub!: HubHandle;
  private hubArgs: string[] = [];
  /** The hub's real leafnode port (what it advertises is a dead address, see start()). */
  private realLeafPort: number | undefined;
  private readonly opened: NatsConnection[] = [];

  private constructor(readonly dir: TempDir) {}

  static async start(opts: { hubArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Fleet> {
    const f = new Fleet(await tempDir("canopy-fleet-"));
    f.hubArgs = opts.hubArgs ?? [];
    if (!f.hubArgs.includes("--leaf-port")) {
      // A hub tells its leaves the leafnode URLs it knows: its own listen address unless it
      // advertises another. A leaf whose proxied link is cut would then reconnect straight to the
      // hub, around the LinkProxy. So the hub listens on a fixed port and advertises a dead one.
      f.realLeafPort = await freePort();
      f.hubArgs = [...f.hubArgs, "--leaf-port", String(f.realLeafPort), "--advertise", `127.0.0.1:${await freePort()}`];
    }
    await f.startHub(opts.env);
    return f;
  }

  /** What a CLI process needs to reach this fleet's hub as the operator. */
  get env(): NodeJS.ProcessEnv {
    return { CANOPY_SERVER: this.hub.client, CANOPY_CREDS: this.hub.creds, XDG_CONFIG_HOME: this.configHome };
  }

  /** Contexts written by this fleet's hub land here, not in the real home. */
  get configHome(): string {
    return join(this.dir.path, "config");
  }

  /** Where `enroll` writes each device's enrollment bundle (its secrets: creds, TLS key). */
  bundlePath(device: string): string {
    return join(this.dir.path, "bundles", `${device}.json`);
  }

  /** Starts (or restarts, same data dir and ports) the hub. */
  async startHub(env: NodeJS.ProcessEnv = {}, ports?: { client: number; leaf: number; http: number }, readyMs = 30_000): Promise<HubHandle> {
    // Explicit free ports (below the ephemeral range), not -1: a restart reuses them, and a port the
    // server had picked from the ephemeral range can be taken by an outgoing connection meanwhile.
    const p = ports ?? { client: await freePort(), leaf: this.realLeafPort ?? (await freePort()), http: await freePort() };
    const proc = new CanopyProcess(
      ["hub", "start", "--data", join(this.dir.path, "hub"), "--host", "127.0.0.1", "--port", String(p.client),
        "--leaf-port", String(p.leaf), "--http-port", String(p.http), ...this.hubArgs],
      { XDG_CONFIG_HOME: this.configHome, ...env },
    );
    const line = await proc.waitForOutput(/"event":"hub-ready"/, readyMs);
    const ready = JSON.parse(line) as { client: string; leaf: string; http: string; creds: string; ca: string };
    this.hub = { proc, ...ready, leafPort: this.realLeafPort ?? Number(/:(\d+)$/.exec(ready.leaf)?.[1]) };
    return this.hub;
  }

  /** SIGKILLs the hub's process group and starts it again on the same ports and data. */
  async restartHub(opts: { kill?: boolean; beforeStart?: () => Promise<void>; readyMs?: number } = {}): Promise<HubHandle> {
    const ports = {
      client: Number(/:(\d+)$/.exec(this.hub.client)?.[1]),
      leaf: this.hub.leafPort,
      http: Number(/:(\d+)$/.exec(this.hub.http)?.[1]),
    };
    if (opts.kill ?? true) {
      this.hub.proc.killGroup("SIGKILL");
      await this.hub.proc.exited;
    } else {
      await this.hub.proc.stop();
    }
    await opts.beforeStart?.();
    return this.startHub({}, ports, opts.readyMs);
  }

  /** `canopy <args>` against this fleet's hub. */
  cli(args: string[], timeoutMs = 30_000, input?: string): Promise<RunResult> {
    return runCanopy(args, { env: this.env, timeoutMs, ...(input === undefined ? {} : { input }) });
  }

  /** `canopy device add` with a bundle (at `bundlePath(device)`) the next `startAgent` enrolls with. */
  async enroll(device: string, groups: string[] = []): Promise<void> {
    await mkdir(join(this.dir.path, "bundles"), { recursive: true, mode: 0o700 });
    // Minting (a key pair, a JWT, a TLS certificate by openssl) makes this the slowest CLI call on a loaded box.
    const r = await this.cli(["device", "add", device, "--bundle", this.bundlePath(device), ...groups.flatMap((g) => ["--group", g])], 90_000);
    if (r.code !== 0) throw new Error(`device add ${device} failed: ${r.stderr}`);
  }

  /** Enrolls (unless told not to) and starts an agent; resolves when it reported ready. */
  async startAgent(
    device: string,
    opts: { groups?: string[]; enroll?: boolean; args?: string[]; env?: NodeJS.ProcessEnv; heartbeat?: string } = {},
  ): Promise<AgentHandle> {
    const dataDir = join(this.dir.path, "devices", device);
    // A device added without a bundle (plain `device add`) and never enrolled gets one now.
    const enroll = (opts.enroll ?? true) || !existsSync(join(dataDir, "identity", "enrollment.json"));
    if (enroll) await this.enroll(device, opts.groups ?? []);
    const existing = this.agents.get(device);
    const link = existing?.link ?? new LinkProxy(this.hub.leafPort);
    if (!existing) await link.start();
    const proc = new CanopyProcess(
      ["agent", "--device", device, ...(enroll ? ["--bundle", this.bundlePath(device)] : []),
        "--hub", `nats-leaf://127.0.0.1:${link.port}`, "--data", dataDir, "--port", String(await freePort()),
        "--heartbeat", opts.heartbeat ?? "1s", ...(opts.args ?? [])],
      opts.env ?? {},
    );
    const line = await proc.waitForOutput(/"event":"agent-ready"/, 30_000);
    const leafUrl = (JSON.parse(line) as { leaf: string }).leaf;
    const handle = { device, proc, leafUrl, dataDir, link };
    this.agents.set(device, handle);
    return handle;
  }

  agent(device: string): AgentHandle {
    const a = this.agents.get(device);
    if (!a) throw new Error(`no agent ${device} in this fleet`);
    return a;
  }

  /** A client connection to the hub as the operator (admin creds), closed by stop(). */
  async hubConnection(): Promise<NatsConnection> {
    const nc = await connect({
      servers: this.hub.client,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      authenticator: fastCredsAuthenticator(await readFile(this.hub.creds)),
      inboxPrefix: Subjects.hubInboxPrefix,
      // As the gateway and the CLI connect (benches drive the hub through this connection).
      noAsyncTraces: true,
    });
    this.opened.push(nc);
    return nc;
  }

  /** A client connection to a device's leaf, closed by stop(). */
  async leafConnection(device: string): Promise<NatsConnection> {
    const nc = await this.dialLeaf(device, { maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    this.opened.push(nc);
    return nc;
  }

  /**
   * The first connection to a device's leaf, retried for up to 30 s: the agent restarts its leaf when
   * its mirrors stay stalled after the hub link returns (about a second of "connection refused"),
   * which is how a test that began right after a link cut failed at its first line.
   */
  private dialLeaf(device: string, opts: { maxReconnectAttempts: number; reconnectTimeWait?: number }): Promise<NatsConnection> {
    return waitFor(() => connect({ servers: this.agent(device).leafUrl, ...opts }), { timeoutMs: 30_000, intervalMs: 250, what: `a connection to ${device}'s leaf` });
  }

  /** Runs `fn` on a short-lived connection to a device's current leaf (its port changes when the agent restarts). */
  async withLeaf<T>(device: string, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
    const nc = await this.dialLeaf(device, { maxReconnectAttempts: 0 });
    try {
      return await fn(nc);
    } finally {
      await nc.close();
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.opened.map((nc) => nc.close()));
    await Promise.allSettled([...this.agents.values()].map(async (a) => {
      await a.proc.stop();
      await a.link.stop();
    }));
    await this.hub?.proc.stop();
    await this.dir.remove();
  }
}
