import { join } from "node:path";
import { mkdir, readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Subjects, waitFor } from "@canopy/protocol";
import { CanopyProcess, freePort, runCanopy, tempDir, type RunResult, type TempDir } from "../harness/index.js";

export interface HubNode {
  name: string;
  ports: { client: number; leaf: number; http: number; cluster: number };
  proc: CanopyProcess;
}

export interface ClusterAgent {
  device: string;
  proc: CanopyProcess;
  leafUrl: string;
}

/**
 * A hub cluster of real `canopy hub start` processes on loopback (nats-server + gateway each, one
 * --routes list for all, one identity made by `canopy hub init --dir` and shared with --identity),
 * and agents enrolled with bundles that list every node's leaf URL (--leaf-urls). Every port is
 * picked free once, so a node restarted after a SIGKILL comes back on the same ports and data.
 */
export class HubCluster {
  readonly nodes: HubNode[] = [];
  readonly agents = new Map<string, ClusterAgent>();
  private readonly opened: NatsConnection[] = [];

  private constructor(readonly dir: TempDir) {}

  static async start(size = 3): Promise<HubCluster> {
    const c = new HubCluster(await tempDir("canopy-cluster-"));
    const init = await c.cli(["hub", "init", "--dir", c.identityDir, "--tls-host", "127.0.0.1", "--json"]);
    if (init.code !== 0) throw new Error(`hub init: ${init.stderr}`);
    for (let i = 1; i <= size; i++) {
      const ports = { client: await freePort(), leaf: await freePort(), http: await freePort(), cluster: await freePort() };
      c.nodes.push({ name: `n${i}`, ports, proc: undefined as unknown as CanopyProcess });
    }
    await Promise.all(c.nodes.map((_, i) => c.startNode(i)));
    return c;
  }

  get identityDir(): string {
    return join(this.dir.path, "identity");
  }

  get creds(): string {
    return join(this.identityDir, "creds", "admin.creds");
  }

  get leafUrls(): string {
    return this.nodes.map((n) => `nats-leaf://127.0.0.1:${n.ports.leaf}`).join(",");
  }

  get routes(): string {
    return this.nodes.map((n) => `nats-route://127.0.0.1:${n.ports.cluster}`).join(",");
  }

  get env(): NodeJS.ProcessEnv {
    return {
      CANOPY_SERVER: this.nodes.map((n) => `nats://127.0.0.1:${n.ports.client}`).join(","),
      CANOPY_CREDS: this.creds,
      XDG_CONFIG_HOME: join(this.dir.path, "config"),
    };
  }

  /** Starts (or restarts) node i on its ports and data; resolves when it printed hub-ready. */
  async startNode(i: number): Promise<HubNode> {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i}`);
    n.proc = new CanopyProcess([
      "hub", "start", "--data", join(this.dir.path, n.name), "--host", "127.0.0.1",
      "--port", String(n.ports.client), "--leaf-port", String(n.ports.leaf), "--http-port", String(n.ports.http),
      "--server-name", n.name, "--cluster-name", "canopy", "--cluster-port", String(n.ports.cluster), "--routes", this.routes,
      "--identity", this.identityDir, "--leaf-urls", this.leafUrls,
    ], { XDG_CONFIG_HOME: join(this.dir.path, "config") });
    await n.proc.waitForOutput(/"event":"hub-ready"/, 90_000);
    return n;
  }

  async kill(i: number): Promise<void> {
    const n = this.nodes[i];
    n?.proc.killGroup("SIGKILL");
    await n?.proc.exited;
  }

  async stopNode(i: number): Promise<void> {
    await this.nodes[i]?.proc.stop();
  }

  nodeIndex(name: string): number {
    const i = this.nodes.findIndex((n) => n.name === name);
    if (i < 0) throw new Error(`no node named ${name}`);
    return i;
  }

  cli(args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return runCanopy(args, { env: this.env, timeoutMs });
  }

  bundlePath(device: string): string {
    return join(this.dir.path, "bundles", `${device}.json`);
  }

  /** `canopy device add --bundle`: the bundle lists every node's leaf URL. */
  async enroll(device: string): Promise<void> {
    await mkdir(join(this.dir.path, "bundles"), { recursive: true, mode: 0o700 });
    const r = await this.cli(["device", "add", device, "--bundle", this.bundlePath(device)]);
    if (r.code !== 0) throw new Error(`device add ${device}: ${r.stderr}`);
  }

  async startAgent(device: string): Promise<ClusterAgent> {
    const enroll = !this.agents.has(device);
    if (enroll) await this.enroll(device);
    const proc = new CanopyProcess([
      "agent", ...(enroll ? ["--bundle", this.bundlePath(device)] : []),
      "--data", join(this.dir.path, "devices", device), "--port", String(await freePort()), "--heartbeat", "1s",
    ]);
    const line = await proc.waitForOutput(/"event":"agent-ready"/, 30_000);
    const a = { device, proc, leafUrl: (JSON.parse(line) as { leaf: string }).leaf };
    this.agents.set(device, a);
    return a;
  }

  /** A client connection that knows every node (fails over like the gateway does). */
  async hubConnection(): Promise<NatsConnection> {
    const nc = await connect({
      servers: this.nodes.map((n) => `nats://127.0.0.1:${n.ports.client}`),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      authenticator: credsAuthenticator(await readFile(this.creds)),
      inboxPrefix: Subjects.hubInboxPrefix,
    });
    this.opened.push(nc);
    return nc;
  }

  async leafConnection(device: string): Promise<NatsConnection> {
    const a = this.agents.get(device);
    if (!a) throw new Error(`no agent ${device}`);
    const nc = await connect({ servers: a.leafUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    this.opened.push(nc);
    return nc;
  }

  devicesOnline(ids: string[], timeoutMs = 30_000): Promise<void> {
    return devicesOnline(this.env, ids, timeoutMs);
  }

  /** The node leading `stream` (waits through an election). */
  async leaderOf(jsm: JetStreamManager, stream: string): Promise<string> {
    return waitFor(async () => (await jsm.streams.info(stream).catch(() => undefined))?.cluster?.leader, { timeoutMs: 30_000, what: `a leader for ${stream}` });
  }

  /** Every replica of `stream` is back and current (a restarted node caught up). */
  async replicasCurrent(jsm: JetStreamManager, stream: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => {
        const c = (await jsm.streams.info(stream).catch(() => undefined))?.cluster;
        return c?.leader && c.replicas?.length === this.nodes.length - 1 && c.replicas.every((r) => r.current && !r.offline);
      },
      { timeoutMs, intervalMs: 250, what: `every replica of ${stream} current` },
    );
  }

  /** A 3-node cluster with agents d1 and d2 online, and an operator's JetStream manager. */
  static async withAgents(): Promise<{ cluster: HubCluster; hub: NatsConnection; jsm: JetStreamManager }> {
    const cluster = await HubCluster.start(3);
    await cluster.startAgent("d1");
    await cluster.startAgent("d2");
    await cluster.devicesOnline(["d1", "d2"]);
    const hub = await cluster.hubConnection();
    return { cluster, hub, jsm: await jetstreamManager(hub) };
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.opened.map((nc) => nc.close()));
    await Promise.allSettled([...this.agents.values()].map((a) => a.proc.stop()));
    await Promise.allSettled(this.nodes.map((n) => n.proc?.stop()));
    await this.dir.remove();
  }
}

/** Waits until `canopy devices` (against `env`'s hub) lists every id online. */
export async function devicesOnline(env: NodeJS.ProcessEnv, ids: string[], timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const r = await runCanopy(["devices", "--json"], { env });
      if (r.code !== 0) return false;
      const list = JSON.parse(r.stdout) as { id: string; online: boolean }[];
      return ids.every((id) => list.some((d) => d.id === id && d.online));
    },
    { timeoutMs, intervalMs: 500, what: `${ids.join(", ")} online` },
  );
}
