import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { z } from "zod";
import { BRIDGE_MCUS_SUBJECT, Backoff, McuSummary, sleep } from "@canopy/protocol";
import type { AgentContext, AgentModule } from "../context.js";
import type { DeviceStatus } from "@canopy/protocol";
import type { AgentOptions } from "../options.js";

const McuList = z.array(McuSummary);

/** The bridge's MQTT flags from the agent's `bridge.mqtt` (a listen address, or one with options). */
function mqttArgs(m: NonNullable<AgentOptions["bridge"]>["mqtt"]): string[] {
  if (m === undefined) return [];
  if (typeof m === "string") return ["--mqtt", m];
  return ["--mqtt", m.listen, ...(m.anonymous ? ["--mqtt-anonymous"] : []), ...(m.profiles ? ["--mqtt-profiles", m.profiles.join(",")] : [])];
}

/**
 * MCUs in the device's status, and the firmware bridge as a supervised child when the agent's config
 * has a `bridge:` section. The parts never import each other, so the agent runs `canopy bridge` as a
 * process (restarted with backoff, stopped with the agent) and asks it for its MCU registry on the
 * leaf-local subject `local.bridge.mcus`.
 */
export class McuModule implements AgentModule {
  readonly name = "mcus";
  private ctx: AgentContext | undefined;
  private child: ChildProcess | undefined;
  private loop: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  async start(ctx: AgentContext): Promise<void> {
    this.ctx = ctx;
    const bridge = ctx.options.bridge;
    if (bridge && (bridge.serial.length > 0 || bridge.mqtt)) {
      const args = ["bridge", "--device", ctx.device, "--leaf", ctx.leafUrl, "--data", join(ctx.options.data, "bridge"),
        ...bridge.serial.flatMap((s) => ["--serial", s]), ...mqttArgs(bridge.mqtt)];
      this.loop = this.supervise(args);
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await this.loop;
  }

  readonly status = async (): Promise<Partial<DeviceStatus>> => {
    const nc = this.ctx?.nc;
    if (!nc) return {};
    try {
      const reply = await nc.request(BRIDGE_MCUS_SUBJECT, "", { timeout: 300 });
      const parsed = McuList.safeParse(reply.json());
      return parsed.success ? { mcus: parsed.data } : {};
    } catch {
      return {}; // no bridge on this device
    }
  };

  private async supervise(args: string[]): Promise<void> {
    const log = this.ctx?.log.child({ component: "bridge" });
    const backoff = new Backoff({ initialMs: 1_000, maxMs: 30_000 });
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const startedAt = Date.now();
      // A larger libuv pool: serial writes, LMDB commits and file reads all queue on it, and one stuck
      // serial close (a pty whose reader is gone) must not hold up the rest.
      const env = { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "16" };
      const child = spawn(process.execPath, [process.argv[1] ?? "canopy", ...args], { stdio: ["ignore", "inherit", "inherit"], env });
      this.child = child;
      log?.info({ pid: child.pid }, "firmware bridge started");
      const code = await new Promise<number | null>((r) => child.once("exit", r));
      if (signal.aborted) return;
      if (Date.now() - startedAt > 60_000) backoff.reset();
      const wait = backoff.next();
      log?.warn({ code, retryInMs: wait }, "firmware bridge exited; restarting");
      if (!(await sleep(wait, signal))) return;
    }
  }
}
