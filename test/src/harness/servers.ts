import { writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  NatsServerProcess,
  renderHubConfig,
  renderLeafConfig,
  waitFor,
  type ServerPorts,
} from "@canopy/protocol";
import { freePort } from "./ports.js";

/** A bare nats-server (hub or leaf) for tests below the CLI level. Real process, free ports, temp dir. */
export class TestServer {
  private proc: NatsServerProcess;
  readonly logs: string[] = [];

  private constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly ports: Required<ServerPorts>,
  ) {
    this.proc = this.makeProc();
  }

  static async hub(dir: string): Promise<TestServer> {
    await mkdir(dir, { recursive: true });
    const ports = { client: await freePort(), leaf: await freePort(), http: await freePort() };
    const configFile = join(dir, "hub.conf");
    await writeFile(
      configFile,
      renderHubConfig({
        storeDir: join(dir, "js"),
        host: "127.0.0.1",
        port: ports.client,
        leafPort: ports.leaf,
        httpPort: ports.http,
        maxFileStore: 2 ** 30,
      }),
    );
    const s = new TestServer(dir, configFile, ports);
    await s.start();
    return s;
  }

  static async leaf(dir: string, device: string, hubLeafPort: number): Promise<TestServer> {
    await mkdir(dir, { recursive: true });
    const ports = { client: await freePort(), leaf: 0, http: await freePort() };
    const configFile = join(dir, "leaf.conf");
    await writeFile(
      configFile,
      renderLeafConfig({
        device,
        storeDir: join(dir, "js"),
        port: ports.client,
        httpPort: ports.http,
        hubUrls: [`nats-leaf://127.0.0.1:${hubLeafPort}`],
        maxFileStore: 2 ** 30,
        reconnectSeconds: 1,
      }),
    );
    const s = new TestServer(dir, configFile, ports);
    await s.start();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.ports.client}`;
  }

  get leafUrl(): string {
    return `nats-leaf://127.0.0.1:${this.ports.leaf}`;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  async start(): Promise<void> {
    this.proc = this.makeProc();
    await this.proc.start();
  }

  async stop(): Promise<void> {
    await this.proc.stop();
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    const exited = this.proc.exited();
    this.proc.kill("SIGKILL");
    await exited;
  }

  /** Number of leafnode connections, from the monitoring endpoint `/leafz`. */
  async leafCount(): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${this.ports.http}/leafz`);
    const body = (await res.json()) as { leafnodes?: number };
    return body.leafnodes ?? 0;
  }

  async waitForLeaves(n: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(async () => (await this.leafCount()) >= n, { timeoutMs, what: `${n} leaf connection(s)` });
  }

  private makeProc(): NatsServerProcess {
    return new NatsServerProcess({
      configFile: this.configFile,
      onLog: (line) => {
        this.logs.push(line);
        if (this.logs.length > 200) this.logs.shift();
      },
    });
  }
}
