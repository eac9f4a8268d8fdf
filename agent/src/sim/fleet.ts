import { readFileSync } from "node:fs";
import { connect, type Authenticator, type NatsConnection } from "@nats-io/transport-node";
import { fastCredsAuthenticator } from "@canopy/protocol/nats/creds";
import { Kvm } from "@nats-io/kv";
import { Assets, Backoff, CanopyError, ErrorCode, Subjects, checkId, errorMessage, sleep } from "@canopy/protocol";
import type { Logger } from "../logging.js";
import { QueryCompiler } from "../query/cel.js";
import { AGENT_VERSION } from "../version.js";
import { SimDevice } from "./device.js";
import { SimCommands } from "./commands.js";
import { simGroups, simProfile } from "./facts.js";

export interface SimFleetOptions {
  devices: number;
  server: string;
  /** Credentials file for the hub (simulated devices talk to it directly, as the operator would). */
  creds?: string;
  seed: number;
  groups: string[];
  /** Device ids are `<prefix>-<index>`; several simulator processes use disjoint `first` indexes. */
  prefix: string;
  first: number;
  heartbeatMs: number;
  /** Simulated devices sharing one NATS connection (1 = a connection each, like real agents). */
  perConnection: number;
  /** "compact" (default): full status on change, compact beats between; "full": full status every heartbeat. */
  presence?: "compact" | "full";
  /** Take commands (ping) from the hub's CMD stream and report results through a hub shard (commands.ts). */
  commands?: boolean;
}

export interface RunningSimFleet {
  devices: SimDevice[];
  stop(signOff?: boolean): Promise<void>;
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}

/**
 * N simulated agents in one process, straight to the hub (no leaf servers): each enrolls itself in
 * KV `devices`, writes presence to KV `status` every heartbeat, and answers `q.*` with the agent's
 * own query code. Registry and presence writes share one control connection; queries arrive on the
 * devices' own connections.
 */
export async function startSimFleet(o: SimFleetOptions, log: Logger): Promise<RunningSimFleet> {
  checkId(`${o.prefix}-0`, "device id");
  for (const g of o.groups) checkId(g, "group id");
  // Built once for every connection: deriving the key is the expensive part of a handshake.
  const creds = o.creds ? fastCredsAuthenticator(readCreds(o.creds)) : undefined;
  const control = await connectTo(o.server, `canopy-sim-control-${o.prefix}`, creds);
  const kvm = new Kvm(control);
  let devicesKv, statusKv, beatKv;
  try {
    devicesKv = await kvm.open(Assets.kvDevices);
    statusKv = await kvm.open(Assets.kvStatus);
    // A hub provisioned before KV `beat` existed (no stream): full records only, as real agents fall back.
    const beat = await kvm.open(Assets.kvBeat);
    beatKv = o.presence === "full" || !(await beat.status().then(() => true, () => false)) ? undefined : beat;
  } catch (err) {
    await control.close();
    throw new CanopyError(ErrorCode.Unavailable, `hub at ${o.server} has no registry buckets (${errorMessage(err)}): start it with 'canopy hub start'`);
  }
  const conns: NatsConnection[] = [control];
  const compiler = new QueryCompiler();
  let errors = 0;
  const onError = (err: unknown): void => {
    if (++errors <= 5 || errors % 1000 === 0) log.warn({ err: errorMessage(err), errors }, "simulated device error");
  };
  const width = String(o.first + o.devices - 1).length;
  const devices: SimDevice[] = [];
  let commands: SimCommands | undefined;
  try {
    const ncs: NatsConnection[] = new Array<NatsConnection>(Math.ceil(o.devices / o.perConnection));
    try {
      await pool([...ncs.keys()], 32, async (c) => {
        ncs[c] = await connectTo(o.server, `canopy-sim-${o.prefix}-${o.first + c * o.perConnection}`, creds);
      });
    } finally {
      conns.push(...ncs.filter(Boolean));
    }
    for (let i = 0; i < o.devices; i++) {
      const index = o.first + i;
      const id = `${o.prefix}-${String(index).padStart(Math.max(4, width), "0")}`;
      const groups = simGroups(index, o.seed, o.groups);
      const profile = simProfile(id, index, o.seed, groups, AGENT_VERSION);
      const nc = ncs[Math.floor(i / o.perConnection)] as NatsConnection;
      devices.push(new SimDevice(id, groups, profile, { nc, devices: devicesKv, status: statusKv, beat: beatKv, compiler, version: AGENT_VERSION, heartbeatMs: o.heartbeatMs }, onError));
    }
    await pool(devices, 64, (d) => d.start());
    if (o.commands) commands = await SimCommands.start(control, devices.map((d) => d.id), onError);
    // Presence again right after a reconnect, spread over up to 2 s (or one heartbeat, if shorter).
    const spreadMs = Math.min(2_000, o.heartbeatMs);
    ncs.forEach((nc, c) => {
      const mine = devices.slice(c * o.perConnection, (c + 1) * o.perConnection);
      void (async () => {
        for await (const s of nc.status()) if (s.type === "reconnect") for (const d of mine) d.reconnected(spreadMs);
      })().catch(() => {});
    });
  } catch (err) {
    await Promise.allSettled(conns.map((nc) => nc.close()));
    throw err;
  }
  log.info({ devices: devices.length, connections: conns.length, server: o.server }, "simulated fleet running");
  return {
    devices,
    async stop(signOff = true) {
      commands?.stop();
      await pool(devices, 64, (d) => d.stop(signOff));
      await Promise.allSettled(conns.map((nc) => nc.drain().catch(() => nc.close())));
    },
  };
}

/** Attempts per connection: thousands of handshakes at once on a busy hub may time out a few. */
const CONNECT_ATTEMPTS = 4;

async function connectTo(server: string, name: string, creds: Authenticator | undefined): Promise<NatsConnection> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 4_000 });
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect({
        servers: server, name, maxReconnectAttempts: -1, reconnectTimeWait: 1_000, reconnectJitter: 2_000, timeout: 10_000, noAsyncTraces: true,
        ...(creds ? { authenticator: creds, inboxPrefix: Subjects.hubInboxPrefix } : {}),
      });
    } catch (err) {
      // Refused credentials or a wrong address will not get better: only timeouts are retried.
      if (attempt >= CONNECT_ATTEMPTS || !/timeout/i.test(errorMessage(err))) {
        throw new CanopyError(ErrorCode.Unavailable, `cannot reach the hub at ${server}: ${errorMessage(err)}`, { cause: err });
      }
      await sleep(backoff.next());
    }
  }
}

function readCreds(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CanopyError(ErrorCode.InvalidInput, `cannot read credentials ${file}: ${errorMessage(err)}`, { cause: err });
  }
}
