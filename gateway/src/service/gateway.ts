import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { Assets, sleep } from "@canopy/protocol";
import { provisionHub } from "../hub/provision.js";
import { Shards } from "../registry/shards.js";
import type { Logger } from "../logging.js";
import { Lease } from "./lease.js";
import { configTasks } from "../config/tasks.js";
import { firmwareRolloutTask } from "../firmware/tasks.js";
import { commandResultsTask } from "../commands/ingest.js";
import { sourceReviveTask } from "../upstream/revive.js";

export interface GatewayTask {
  /** Lease name; one instance in the fleet runs the task at a time. */
  name: string;
  intervalMs: number;
  run(nc: NatsConnection, signal: AbortSignal): Promise<void>;
}

/**
 * The hub-side services. Several instances may run: request handlers use queue groups, and periodic
 * work that must happen once (shard repair, config rendering, rollouts) runs under a KV lease.
 */
export class Gateway {
  readonly id = randomUUID().slice(0, 8);
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly tasks: GatewayTask[] = defaultTasks(),
  ) {}

  async start(): Promise<void> {
    await provisionHub(this.nc);
    const leases = await new Kvm(this.nc).open(Assets.kvLeases);
    for (const task of this.tasks) {
      const ttlMs = Math.max(15_000, task.intervalMs * 3);
      this.loops.push(this.runTask(task, new Lease(leases, task.name, this.id, ttlMs)));
    }
    this.log.info({ gateway: this.id, tasks: this.tasks.map((t) => t.name) }, "gateway running");
  }

  /** Stops the task loops; a task stuck in a slow request (hub already gone) gets `graceMs`. */
  async stop(graceMs = 3_000): Promise<void> {
    this.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.loops),
      new Promise((r) => (timer = setTimeout(r, graceMs))),
    ]);
    clearTimeout(timer);
  }

  private async runTask(task: GatewayTask, lease: Lease): Promise<void> {
    const signal = this.abort.signal;
    const log = this.log.child({ task: task.name });
    let held = false;
    while (!signal.aborted) {
      const now = await lease.tryAcquire();
      if (now !== held) log.info({ gateway: this.id }, now ? "lease acquired" : "lease lost");
      held = now;
      if (held) {
        await task.run(this.nc, signal).catch((err: Error) => log.warn({ err: err.message }, "task failed"));
      }
      if (!(await sleep(task.intervalMs, signal))) break;
    }
    if (held) await lease.release();
  }
}

/** Shard repair: make every shard's stream sources equal to its KV record (drift, crashed adds). */
export const shardRepair: GatewayTask = {
  name: "shard-repair",
  intervalMs: 10_000,
  async run(nc) {
    const shards = await Shards.open(nc);
    for (const s of await shards.list()) await shards.sync(s.name);
  },
};

export function defaultTasks(): GatewayTask[] {
  return [shardRepair, sourceReviveTask(), ...configTasks(), firmwareRolloutTask(), commandResultsTask()];
}
