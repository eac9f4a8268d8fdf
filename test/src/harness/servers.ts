import { writeFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { fastCredsAuthenticator } from "@canopy/protocol/nats/creds";
import {
  NatsServerProcess,
  Subjects,
  renderHubConfig,
  renderLeafConfig,
  type LeafConfigOptions,
  waitFor,
  type ServerPorts,
  type TlsFilesConfig,
} from "@canopy/protocol";
import { initIdentity, type Identity } from "@canopy/gateway/identity/init";
import { mintDeviceUser } from "@canopy/gateway/identity/device";
import { issueCert } from "@canopy/gateway/identity/tls";
import { freePort } from "./ports.js";

/** What a leaf needs to join an operator-mode hub: a device user's creds and its TLS client files. */
export interface LeafAuth {
  credentialsFile: string;
  tls: TlsFilesConfig;
  userKey: string;
}

/**
 * A bare nats-server (hub or leaf) for tests below the CLI level. Real process, free ports, temp dir.
 * A hub runs in operator mode with the same identity code as `canopy hub start` (admin creds in
 * `creds`); `connect()` opens an authenticated client, `deviceAuth()` mints a device's leaf creds.
 */
export class TestServer {
  private proc: NatsServerProcess;
  readonly logs: string[] = [];
  /** Operator-mode hubs only. */
  identity: Identity | undefined;

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
    const identity = await initIdentity(join(dir, "identity"));
    await writeFile(
      configFile,
      renderHubConfig({
        storeDir: join(dir, "js"),
        host: "127.0.0.1",
        port: ports.client,
        leafPort: ports.leaf,
        httpPort: ports.http,
        maxFileStore: 2 ** 30,
        auth: {
          operatorJwt: identity.operator.jwt,
          systemAccount: identity.sys.pub,
          resolverDir: join(dir, "jwt"),
          preload: { [identity.sys.pub]: identity.sys.jwt, [identity.account.pub]: identity.account.jwt },
        },
        leafTls: { certFile: identity.tls.serverCert, keyFile: identity.tls.serverKey, caFile: identity.tls.caCert },
      }),
    );
    const s = new TestServer(dir, configFile, ports);
    s.identity = identity;
    await s.start();
    return s;
  }

  /** Admin creds of an operator-mode hub. */
  get creds(): string {
    if (!this.identity) throw new Error("not an operator-mode hub");
    return this.identity.adminCreds;
  }

  /** A client connection: as admin on a hub (or `creds`), unauthenticated on a leaf's loopback port. */
  async connect(opts: Partial<ConnectionOptions> & { creds?: string } = {}): Promise<NatsConnection> {
    const { creds, ...rest } = opts;
    const file = creds ?? this.identity?.adminCreds;
    return connect({
      servers: this.url,
      ...(file ? { authenticator: fastCredsAuthenticator(await readFile(file)), inboxPrefix: Subjects.hubInboxPrefix } : {}),
      ...rest,
    });
  }

  /** Mints a device user (LEAFNODE only, the device's allow-lists) and a TLS client cert into `dir`. */
  async deviceAuth(device: string, dir: string): Promise<LeafAuth> {
    if (!this.identity) throw new Error("not an operator-mode hub");
    await mkdir(dir, { recursive: true });
    const user = await mintDeviceUser(this.identity, device);
    const pem = await issueCert(this.identity.tls, device, [], "clientAuth");
    const credentialsFile = join(dir, `${device}.creds`);
    const tls = { certFile: join(dir, `${device}.pem`), keyFile: join(dir, `${device}.key`), caFile: this.identity.tls.caCert };
    await writeFile(credentialsFile, user.creds, { mode: 0o600 });
    await writeFile(tls.certFile, pem.cert);
    await writeFile(tls.keyFile, pem.key, { mode: 0o600 });
    return { credentialsFile, tls, userKey: user.userKey };
  }

  /** `leafOpts`: the leaf config's durability / link settings (sync interval, compression) for benches. */
  static async leaf(
    dir: string,
    device: string,
    hubLeafPort: number,
    auth?: LeafAuth,
    leafOpts: Pick<LeafConfigOptions, "syncInterval" | "compression"> = {},
  ): Promise<TestServer> {
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
        ...leafOpts,
        ...(auth ? { credentialsFile: auth.credentialsFile, tls: auth.tls } : {}),
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
