import type { KV } from "@nats-io/kv";
import type { z } from "zod";
import { CanopyError, ErrorCode, checkId } from "@canopy/protocol";
import { mapLimit } from "../kv/read.js";
import { ACTIVE_STATES, type RolloutCore } from "./model.js";
import type { Stored } from "./engine.js";

/**
 * Rollout records of one kind in hub KV `rollouts` (config and firmware rollouts share the bucket;
 * each kind reads only the records its schema accepts). Every change is a compare-and-set on the
 * record's revision.
 */
export class RolloutRecords<R extends RolloutCore> {
  constructor(
    protected readonly kv: KV,
    private readonly schema: z.ZodType<R>,
    private readonly noun = "rollout",
  ) {}

  async get(id: string): Promise<Stored<R> | undefined> {
    const e = await this.kv.get(checkId(id, "id"));
    if (!e || e.operation !== "PUT") return undefined;
    const r = this.schema.safeParse(e.json());
    return r.success ? { rollout: r.data, revision: e.revision } : undefined;
  }

  /** Newest first. Unreadable records (and other kinds) are skipped: never crash a task on one record. */
  async listStored(): Promise<Array<Stored<R>>> {
    const ids: string[] = [];
    for await (const k of await this.kv.keys()) ids.push(k);
    const all = await mapLimit(ids, 16, (id) => this.get(id).catch(() => undefined));
    return all.filter((r): r is Stored<R> => r !== undefined).sort((a, b) => b.rollout.createdAt - a.rollout.createdAt);
  }

  async list(): Promise<R[]> {
    return (await this.listStored()).map((s) => s.rollout);
  }

  async active(): Promise<Array<Stored<R>>> {
    return (await this.listStored()).filter((s) => ACTIVE_STATES.includes(s.rollout.state));
  }

  protected async put(r: R): Promise<void> {
    await this.kv.create(r.id, JSON.stringify(this.schema.parse(r)));
  }

  /** Compare-and-set: throws on a lost race (the caller re-reads). */
  async update(s: Stored<R>, next: R): Promise<Stored<R>> {
    const revision = await this.kv.update(next.id, JSON.stringify(this.schema.parse(next)), s.revision);
    return { rollout: next, revision };
  }

  /** Asks the gateway to halt and roll back; it acts on its next step. */
  async requestAbort(id: string): Promise<R> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const s = await this.get(id);
      if (!s) throw new CanopyError(ErrorCode.NotFound, `no ${this.noun} ${id}`);
      if (!ACTIVE_STATES.includes(s.rollout.state)) {
        throw new CanopyError(ErrorCode.Conflict, `${this.noun} ${id} is already ${s.rollout.state}`);
      }
      try {
        return (await this.update(s, { ...s.rollout, abortRequested: true, updatedAt: Date.now() })).rollout;
      } catch {
        /* raced with the gateway's step: re-read */
      }
    }
    throw new CanopyError(ErrorCode.Conflict, `could not mark ${this.noun} ${id} for abort: too much contention`);
  }
}
