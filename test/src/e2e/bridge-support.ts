import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, DiscardPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { BRIDGE_MCUS_SUBJECT, BRIDGE_STATS_SUBJECT, waitFor, type McuSummary } from "@canopy/protocol";
import { CanopyProcess, freePort, tempDir, TestServer, type TempDir } from "../harness/index.js";

/** Shared plumbing of the bridge e2e tests: a device leaf with its UP stream, socat ptys, the bridge CLI. */
export interface Leaf {
  server: TestServer;
  nc: NatsConnection;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

export async function leafWithUp(dir: TempDir, device = "d1"): Promise<Leaf> {
  // No hub: the leaf's remote points at a closed port; the bridge only needs the leaf and its UP.
  const server = await TestServer.leaf(join(dir.path, "leaf"), device, await freePort());
  const nc = await connect({ servers: server.url }).catch(async (err: unknown) => {
    await server.stop();
    throw err;
  });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: "UP",
    subjects: [`up.${device}.>`],
    duplicate_window: 120e9,
    max_bytes: 512 * 2 ** 20,
    discard: DiscardPolicy.Old,
    allow_atomic: true, // as the agent's UP (agent/src/up/stream.ts): the bridge batches into it
  });
  return {
    server,
    nc,
    jsm,
    async close() {
      await nc.close().catch(() => {});
      await server.stop();
    },
  };
}

export interface UpMessage {
  subject: string;
  data: string;
  seq: number;
  msgId: string | undefined;
}

/** Every message in UP under `filter`, in stream order. */
export async function readUp(leaf: Leaf, filter: string): Promise<UpMessage[]> {
  const info = await leaf.jsm.streams.info("UP", { subjects_filter: filter });
  const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  if (total === 0) return [];
  const c = await jetstream(leaf.nc).consumers.get("UP", { filter_subjects: filter });
  const out: UpMessage[] = [];
  const iter = await c.consume({ max_messages: 1000 });
  for await (const m of iter) {
    out.push({ subject: m.subject, data: m.string(), seq: m.seq, msgId: m.headers?.get("Nats-Msg-Id") });
    if (m.info.pending === 0 || out.length >= total) break;
  }
  await iter.close();
  return out;
}

export async function countUp(leaf: Leaf, filter: string): Promise<number> {
  const info = await leaf.jsm.streams.info("UP", { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

export interface Stats {
  counters: Record<string, number>;
  published: number;
  duplicates: number;
  batches: number;
  memory: { rss: number; heapUsed: number };
  mqtt?: { port: number; connections: number; framerHighWater: number };
  serial: { ports: number; decoderHighWater: number };
}

/** `gc: true` collects garbage first when the bridge runs with NODE_OPTIONS=--expose-gc. */
export async function bridgeStats(nc: NatsConnection, gc = false): Promise<Stats> {
  return (await nc.request(BRIDGE_STATS_SUBJECT, gc ? "gc" : "", { timeout: 5_000 })).json<Stats>();
}

export async function bridgeMcus(nc: NatsConnection): Promise<McuSummary[]> {
  return (await nc.request(BRIDGE_MCUS_SUBJECT, "", { timeout: 5_000 })).json<McuSummary[]>();
}

/** A socat pty pair: `a` for the bridge, `b` for the MCU. kill() is an unplug; start() a replug. */
export class PtyPair {
  private child: ChildProcess | undefined;
  constructor(readonly a: string, readonly b: string) {}

  static in(dir: TempDir, name = "tty"): PtyPair {
    return new PtyPair(join(dir.path, `${name}-bridge`), join(dir.path, `${name}-mcu`));
  }

  async start(): Promise<void> {
    // A SIGKILLed socat leaves its links behind, pointing at /dev/pts numbers that other pairs may
    // reuse: remove them, so the wait below is for this socat's own links.
    rmSync(this.a, { force: true });
    rmSync(this.b, { force: true });
    const child = spawn("socat", [`pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`], { stdio: "ignore" });
    this.child = child;
    await waitFor(() => existsSync(this.a) && existsSync(this.b), { timeoutMs: 5_000, what: "socat ptys" });
  }

  /**
   * SIGKILL: both ptys vanish mid-stream, and so do their links, as a USB adapter's device node and
   * its /dev/serial/by-id link do when the cable is pulled. A link left behind would point at a
   * /dev/pts number that another test's socat may get next: a bridge or sim reconnecting through it
   * would talk to that test's pty (seen: our sim's frames acked by another bridge, "Cannot lock port").
   */
  async kill(): Promise<void> {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = once(c, "exit");
      c.kill("SIGKILL");
      await exited;
    }
    rmSync(this.a, { force: true });
    rmSync(this.b, { force: true });
  }
}

/**
 * Cleanups run in reverse order of registration, all of them even if one fails, and are registered
 * before anything can fail, so a failed start never leaks a process (which would hang the test file).
 */
export class Cleanup {
  private readonly fns: Array<() => Promise<unknown> | unknown> = [];
  constructor(t: { after(fn: () => Promise<void>): void }) {
    t.after(async () => {
      for (const fn of this.fns.reverse()) await Promise.resolve().then(fn).catch(() => {});
    });
  }
  add(fn: () => Promise<unknown> | unknown): void {
    this.fns.push(fn);
  }
}

export async function startBridge(cleanup: Cleanup, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CanopyProcess> {
  const p = new CanopyProcess(["bridge", ...args], env);
  cleanup.add(() => p.stop());
  await p.waitForOutput(/"bridge ready"/, 20_000);
  return p;
}

export function startSim(cleanup: Cleanup, args: string[]): CanopyProcess {
  const p = new CanopyProcess(["sim", "mcu", ...args]);
  cleanup.add(() => p.stop());
  return p;
}

/** Temp dir + leaf with UP, torn down by `cleanup`. */
export async function leafEnv(cleanup: Cleanup, prefix: string, device = "d1"): Promise<{ dir: TempDir; leaf: Leaf }> {
  const dir = await tempDir(prefix);
  cleanup.add(() => dir.remove());
  const leaf = await leafWithUp(dir, device);
  cleanup.add(() => leaf.close());
  return { dir, leaf };
}

export async function ptyPair(cleanup: Cleanup, dir: TempDir, name = "tty"): Promise<PtyPair> {
  const p = PtyPair.in(dir, name);
  cleanup.add(() => p.kill());
  await p.start();
  return p;
}

/** The last `{"event":"done",…}` line a sim printed. */
export function simSummary(p: CanopyProcess): Record<string, number> {
  const line = [...p.output].reverse().find((l) => l.includes('"event":"done"'));
  return line ? (JSON.parse(line) as Record<string, number>) : {};
}
