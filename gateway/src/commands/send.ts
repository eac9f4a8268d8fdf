import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import {
  CanopyError,
  CommandName,
  CommandSubjects,
  DEFAULT_COMMAND_TTL_MS,
  ErrorCode,
  MAX_COMMAND_TTL_MS,
  Subjects,
  check,
  checkId,
  encode,
  errorMessage,
  hasSecrets,
  isTerminal,
  redactSecrets,
  isValidId,
  type CommandCancel,
  type CommandRecord,
  type CommandRequest,
} from "@canopy/protocol";
import { CommandStore, newCommandId } from "./store.js";
import { eraseSecret } from "./ingest.js";

export interface SendOptions {
  device: string;
  name: string;
  args?: Record<string, unknown>;
  ttlMs?: number;
  by?: string;
  /** A caller-chosen command id (e.g. one per rollout unit, so a retried step never sends twice). */
  id?: string;
}

/**
 * Queues commands in the hub's `CMD` stream. The KV record (`queued`) is written first, then the
 * request is published with `Nats-Msg-Id` = command id (the stream's 1 h duplicate window drops a
 * retried publish); a publish that fails marks the record failed.
 */
export class CommandSender {
  private constructor(
    readonly store: CommandStore,
    private readonly js: JetStreamClient,
    private readonly nc: NatsConnection,
  ) {}

  static async open(nc: NatsConnection): Promise<CommandSender> {
    return new CommandSender(await CommandStore.open(nc), jetstream(nc), nc);
  }

  async send(o: SendOptions): Promise<CommandRecord> {
    const device = checkId(o.device, "device id");
    const name = check(CommandName, o.name);
    const ttlMs = o.ttlMs ?? DEFAULT_COMMAND_TTL_MS;
    if (!(ttlMs > 0 && ttlMs <= MAX_COMMAND_TTL_MS)) {
      throw new CanopyError(ErrorCode.InvalidInput, `ttl must be between 1 ms and 30 days (the CMD stream keeps commands 30 days)`);
    }
    const now = Date.now();
    const id = o.id === undefined ? newCommandId(now) : checkId(o.id, "command id");
    const args = o.args ?? {};
    const req: CommandRequest = { id, device, name, args, createdAt: now, ttlMs, ...(o.by ? { by: o.by } : {}) };
    // The record never holds a secret; the request in CMD does until the command ends (then erased).
    const rec: CommandRecord = { ...req, args: redactSecrets(args), state: "queued", times: { queued: now }, updatedAt: now };
    const publish = (): Promise<PubAck> => this.js.publish(requestSubject(device, name, args), encode(req), { msgID: id, timeout: 10_000 });
    let pending: Promise<PubAck> | undefined;
    if (o.id === undefined) {
      // A fresh id cannot exist yet: the record and the request go out together (one hub round trip
      // instead of two). The record is written first on the connection, and the result comes back
      // through the leaf, the agent and the hub's shard, milliseconds later.
      const created = this.store.create(rec);
      pending = publish();
      pending.catch(() => {}); // awaited below, once the record is settled
      try {
        await created;
      } catch (err) {
        // The request may be queued: the record must exist (merged into one the ingest made meanwhile).
        const queued = await pending.then(() => true, () => false);
        if (!queued) throw err;
        if (!(await this.recordAfterFailedCreate(rec))) {
          throw new CanopyError(
            ErrorCode.Unavailable,
            `command ${id} was queued for ${device}, but its record could not be written (${errorMessage(err)}); it will run, and the device's result creates the record`,
            { cause: err },
          );
        }
      }
    } else {
      // A caller-chosen id (a retried rollout step) is checked first: an existing record means sent.
      await this.store.create(rec);
    }
    try {
      const ack = await (pending ?? publish());
      if (hasSecrets(args)) {
        const now = await this.store.modify(device, id, (r) => ({ ...r, secretSeq: ack.seq }));
        // It may have ended already (a fast device): then nobody else will erase it.
        if (now && isTerminal(now.state)) await eraseSecret(this.nc, this.store, now);
      }
    } catch (err) {
      const error = { code: ErrorCode.Unavailable, message: `could not queue the command in CMD: ${errorMessage(err)}` };
      await this.store.modify(device, id, (r) => ({ ...r, state: "failed", error, updatedAt: Date.now(), times: { ...r.times, failed: Date.now() } }));
      throw new CanopyError(ErrorCode.Unavailable, error.message, { cause: err });
    }
    return rec;
  }

  /**
   * After a failed create of a fresh command's record whose request was queued: the record must exist.
   * One the ingest created from an early event (it lacks the name and arguments) gets them; a missing
   * one is created again. True when the record exists.
   */
  private async recordAfterFailedCreate(rec: CommandRecord): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const merged = await this.store
        .modify(rec.device, rec.id, (r) => ({ ...r, name: rec.name, args: rec.args, createdAt: rec.createdAt, ttlMs: rec.ttlMs, ...(rec.by ? { by: rec.by } : {}), times: { ...rec.times, ...r.times } }))
        .catch(() => undefined);
      if (merged) return true;
      if (await this.store.create(rec).then(() => true, () => false)) return true;
    }
    return false;
  }

  /**
   * Queues a cancel behind the command in CMD (it reaches an offline device the same way). The device
   * decides: `cancelled` if it had not started, its handler's AbortSignal fires if it is running.
   */
  async cancel(id: string): Promise<CommandRecord> {
    const { record } = await this.store.require(id);
    if (isTerminal(record.state)) {
      throw new CanopyError(ErrorCode.Conflict, `command ${id} already ended: ${record.state}`);
    }
    const at = Date.now();
    const body: CommandCancel = { id, device: record.device, at };
    await this.js.publish(CommandSubjects.cancel(record.device, id), encode(body), { msgID: `${id}-cancel`, timeout: 10_000 });
    const updated = await this.store.modify(record.device, id, (r) =>
      r.cancelRequestedAt !== undefined || isTerminal(r.state) ? undefined : { ...r, cancelRequestedAt: at, updatedAt: at },
    );
    return updated ?? record;
  }
}

/** `cmd.<dev>.<name>`; MCU commands with a valid `mcu` arg use DESIGN's `cmd.<dev>.mcu.<mcu>.<name>`. */
function requestSubject(device: string, name: string, args: Record<string, unknown>): string {
  const mcuName = name.startsWith("mcu.") ? name.slice(4) : undefined;
  if (mcuName && isValidId(mcuName) && isValidId(args.mcu)) return Subjects.mcuCommand(device, args.mcu, mcuName);
  return CommandSubjects.request(device, name);
}
