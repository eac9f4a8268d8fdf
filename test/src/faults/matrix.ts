import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { natsServerChild, type AgentHandle, type Fleet } from "../harness/index.js";

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
