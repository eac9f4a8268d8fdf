import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { Assets, CanopyError, CommandRecord, ErrorCode, checkId, commandKey, type CommandRecord as Rec } from "@canopy/protocol";

/** Time-ordered, unique, and a valid id token: 9 base36 chars of ms time + 10 hex chars of randomness. */
export function newCommandId(now = Date.now()): string {
  return `${now.toString(36).padStart(9, "0")}${randomBytes(5).toString("hex")}`;
}

export interface Stored {
  record: Rec;
  revision: number;
}

/** KV `commands`: the latest state of each command under `<dev>.<id>`; changes by compare-and-set. */
export class CommandStore {
  private constructor(
    readonly kv: KV,
    /** The hub connection the store was opened on (waits also listen for results on it). */
    readonly nc: NatsConnection,
  ) {}

  static async open(nc: NatsConnection): Promise<CommandStore> {
    return new CommandStore(await new Kvm(nc).open(Assets.kvCommands), nc);
  }

  async create(rec: Rec): Promise<number> {
    return this.kv.create(commandKey(rec.device, rec.id), JSON.stringify(rec));
  }

  async get(device: string, id: string): Promise<Stored | undefined> {
    const e = await this.kv.get(commandKey(device, id));
    if (!e || e.operation !== "PUT") return undefined;
    const r = CommandRecord.safeParse(e.json());
    return r.success ? { record: r.data, revision: e.revision } : undefined;
  }

  /** Finds a command by id alone (key `*.<id>`). */
  async find(id: string): Promise<Stored | undefined> {
    checkId(id, "command id");
    for await (const key of await this.kv.keys(`*.${id}`)) {
      const device = key.slice(0, key.indexOf("."));
      const s = await this.get(device, id);
      if (s) return s;
    }
    return undefined;
  }

  async require(id: string): Promise<Stored> {
    const s = await this.find(id);
    if (!s) throw new CanopyError(ErrorCode.NotFound, `no command ${id} (ids are kept for 30 days)`);
    return s;
  }

  /** Writes `rec` if the entry is still at `revision`; false on a conflicting write. */
  async update(rec: Rec, revision: number): Promise<number | undefined> {
    try {
      return await this.kv.update(commandKey(rec.device, rec.id), JSON.stringify(rec), revision);
    } catch (err) {
      if (/wrong last sequence|10071/i.test((err as Error).message)) return undefined;
      throw err;
    }
  }

  /** Re-reads and re-applies `change` until the compare-and-set lands (or there is nothing to change). */
  async modify(device: string, id: string, change: (r: Rec) => Rec | undefined): Promise<Rec | undefined> {
    for (let attempt = 0; attempt < 32; attempt++) {
      const cur = await this.get(device, id);
      if (!cur) return undefined;
      const next = change(cur.record);
      if (!next) return cur.record;
      if ((await this.update(next, cur.revision)) !== undefined) return next;
    }
    throw new CanopyError(ErrorCode.Conflict, `command ${id} kept changing while being updated`);
  }

  /** Newest first. `device` narrows the key scan to `<dev>.*`. */
  async list(opts: { device?: string | undefined; limit?: number } = {}): Promise<Rec[]> {
    const filter = opts.device === undefined ? "*.*" : `${checkId(opts.device, "device id")}.*`;
    // A Set: keys() walks the bucket's stream, so a record rewritten during the walk (a command's
    // next event) can be listed twice; the console showed such a command as two rows.
    const seen = new Set<string>();
    for await (const k of await this.kv.keys(filter)) seen.add(k);
    const keys = [...seen];
    // Ids start with their creation time in base36, so sorting keys' id parts sorts by time.
    keys.sort((a, b) => idOf(b).localeCompare(idOf(a)));
    const out: Rec[] = [];
    for (const k of keys.slice(0, opts.limit ?? keys.length)) {
      const dot = k.indexOf(".");
      const s = await this.get(k.slice(0, dot), k.slice(dot + 1)).catch(() => undefined);
      if (s) out.push(s.record);
    }
    return out;
  }
}

function idOf(key: string): string {
  return key.slice(key.indexOf(".") + 1);
}
