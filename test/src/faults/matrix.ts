import assert from "node:assert/strict";
import mqtt, { type MqttClient } from "mqtt";
import { waitFor } from "@canopy/protocol";
import { natsServerChild, readShard, waitForCount, type AgentHandle, type Fleet } from "../harness/index.js";

/**
 * The fault matrix's shared parts: what to SIGKILL (and how the fleet comes back), and how to count
 * what arrived. Each workload file runs every fault against one fleet, one cell after the other.
 */
export type Fault = "hub" | "leaf" | "agent" | "bridge";
export const FAULTS: readonly Fault[] = ["hub", "leaf", "agent", "bridge"];

/** How a device's agent was started, so an agent cell can start it again the same way. */
export interface AgentSpec {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  groups?: string[];
  heartbeat?: string;
}

/** The pid of the firmware bridge the agent started last (from its "firmware bridge started" log line). */
export function bridgePid(agent: AgentHandle): number | undefined {
  const line = [...agent.proc.output].reverse().find((l) => l.includes('"firmware bridge started"'));
  return line ? (JSON.parse(line) as { pid: number }).pid : undefined;
}

/**
 * SIGKILLs one part and waits until it is back: the hub (nats-server and gateway, restarted on the
 * same ports and data), a device's leaf nats-server or bridge (the agent restarts them), or the
 * agent's whole process group (agent, leaf, bridge: a power cut of the device's software, restarted
 * on the same data). Returns how long the part was gone, in ms.
 */
export async function inject(fleet: Fleet, device: string, fault: Fault, spec: AgentSpec = {}): Promise<number> {
  const t0 = Date.now();
  const agent = fleet.agent(device);
  switch (fault) {
    case "hub":
      await fleet.restartHub();
      break;
    case "leaf": {
      const pid = await natsServerChild(agent.proc.pid);
      assert.ok(pid, "the agent runs its leaf nats-server as a child");
      process.kill(pid, "SIGKILL");
      await waitFor(async () => {
        const next = await natsServerChild(agent.proc.pid);
        return next !== undefined && next !== pid;
      }, { timeoutMs: 30_000, what: "the agent restarted its leaf" });
      break;
    }
    case "bridge": {
      const pid = bridgePid(agent);
      assert.ok(pid, "bridge pid in the agent's log");
      process.kill(pid, "SIGKILL");
      await waitFor(() => (bridgePid(agent) ?? pid) !== pid, { timeoutMs: 30_000, what: "the agent restarted the bridge" });
      break;
    }
    case "agent":
      agent.proc.killGroup("SIGKILL");
      await agent.proc.exited;
      await fleet.startAgent(device, { enroll: false, ...spec });
      break;
  }
  return Date.now() - t0;
}

/** What one source (an MQTT client, an MCU, an app) got into the hub, against what it was acked. */
export interface SourceCount {
  arrived: number;
  duplicates: number;
  /** Positions where a value was not above the one before it. */
  orderViolations: number;
  /** Acked values absent from the hub. */
  missing: number;
}

/** Counts `values` (one source's readings in hub order) against the set of acked values. */
export function countSource(values: readonly number[], acked: Iterable<number>): SourceCount {
  const seen = new Set<number>();
  let duplicates = 0;
  let orderViolations = 0;
  values.forEach((v, i) => {
    if (seen.has(v)) duplicates++;
    seen.add(v);
    if (i > 0 && v <= (values[i - 1] as number)) orderViolations++;
  });
  let missing = 0;
  for (const a of acked) if (!seen.has(a)) missing++;
  return { arrived: values.length, duplicates, orderViolations, missing };
}

/** Sums per-source counts (for one diagnostic line per cell). */
export function total(counts: readonly SourceCount[]): SourceCount {
  return counts.reduce(
    (a, c) => ({ arrived: a.arrived + c.arrived, duplicates: a.duplicates + c.duplicates, orderViolations: a.orderViolations + c.orderViolations, missing: a.missing + c.missing }),
    { arrived: 0, duplicates: 0, orderViolations: 0, missing: 0 },
  );
}

/** Groups hub payloads `"<source>:<value>"` by source. */
export function bySource(payloads: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const p of payloads) {
    const i = p.lastIndexOf(":");
    const src = p.slice(0, i);
    let list = out.get(src);
    if (!list) out.set(src, (list = []));
    list.push(Number(p.slice(i + 1)));
  }
  return out;
}

/** Resolves once `n()` reached `at` (the point of a cell where its fault is injected). */
export function reach(n: () => number, at: number, what: string, timeoutMs = 120_000): Promise<unknown> {
  return waitFor(() => n() >= at, { timeoutMs, intervalMs: 5, what });
}

/** A running load: progress, completion, and the hub-side count against what was acked. */
export interface Load {
  acked: () => number;
  done: Promise<unknown>;
  check(): Promise<SourceCount>;
  stop(): Promise<void>;
}

/**
 * `clients` `mqtt` npm clients on a device's bridge, each publishing `perClient` QoS1 messages
 * `<client>:<k>` on `<client>/tlm/<metric>` at once (the client queues them; it resends its in-flight
 * window after a reconnect with DUP=0, the case the bridge must recognise).
 */
export function mqttLoad(fleet: Fleet, o: { device: string; port: number; metric: string; clients: number; perClient: number }): Load {
  const ids = Array.from({ length: o.clients }, (_, i) => `${o.metric}c${i}`);
  const clients: MqttClient[] = ids.map((clientId, i) =>
    mqtt.connect(`mqtt://127.0.0.1:${o.port}`, { clientId, protocolVersion: i % 2 ? 5 : 4, reconnectPeriod: 200, connectTimeout: 2_000, clean: true }),
  );
  const acked = ids.map(() => new Set<number>());
  let n = 0;
  const done = waitFor(() => clients.every((c) => c.connected), { timeoutMs: 30_000, what: "mqtt clients connected" }).then(() =>
    Promise.all(
      clients.map((c, i) =>
        Promise.all(
          Array.from({ length: o.perClient }, (_, k) =>
            c.publishAsync(`${ids[i]}/tlm/${o.metric}`, `${ids[i]}:${k}`, { qos: 1 }).then(() => {
              acked[i]?.add(k);
              n++;
            }),
          ),
        ),
      ),
    ),
  );
  return {
    acked: () => n,
    done,
    async check() {
      const hub = await fleet.hubConnection();
      const filter = `up.${o.device}.tlm.mcu.*.${o.metric}`;
      await waitForCount(hub, "FLEET_UP_0", filter, n, 90_000);
      const got = bySource(await readShard(hub, "FLEET_UP_0", filter));
      return total(ids.map((id, i) => countSource(got.get(id) ?? [], acked[i] ?? [])));
    },
    async stop() {
      await Promise.allSettled(clients.map((c) => c.endAsync(true)));
    },
  };
}
