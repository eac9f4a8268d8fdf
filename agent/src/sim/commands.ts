import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DeliverPolicy, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import {
  Assets,
  CanopyError,
  CommandRequest,
  ErrorCode,
  Subjects,
  errorMessage,
  waitFor,
  type CommandEvent,
} from "@canopy/protocol";
import { AGENT_VERSION } from "../version.js";

/** How long the gateway's shard repair (every 10 s) may take to create the direct shard's stream. */
const SHARD_READY_MS = 60_000;

/**
 * Simulated devices take commands (`canopy sim fleet --commands`) along the real path as far as a
 * device without a leaf can. In: the gateway's hub `CMD` stream, read by one ordered consumer per
 * simulator process filtered to its devices' `cmd.<dev>.>` (a real device reads its leaf's filtered
 * mirror of the same stream). Out: `running` and then the terminal event on `up.<dev>.evt.cmd.<id>`,
 * JetStream-published with a `Nats-Msg-Id` into a hub shard that captures these devices' `up.<dev>.>`
 * (a "direct" shard: the KV `shards` record written here, the stream made by the gateway's shard
 * repair), from which the gateway's result ingest fills KV `commands` as for any device.
 * Runs `ping`; any other name is `rejected`, a command past its TTL `expired`.
 */
export class SimCommands {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly messages: ConsumerMessages,
    private readonly onError: (err: unknown) => void,
  ) {}

  static async start(nc: NatsConnection, ids: string[], onError: (err: unknown) => void): Promise<SimCommands> {
    await directShard(nc, ids);
    const consumer = await jetstream(nc).consumers.get(Assets.cmdStream, {
      filter_subjects: ids.map((id) => `cmd.${id}.>`),
      deliver_policy: DeliverPolicy.New,
    });
    const sim = new SimCommands(nc, await consumer.consume(), onError);
    void (async () => {
      for await (const m of sim.messages) sim.handle(m);
    })().catch(onError);
    return sim;
  }

  stop(): void {
    void this.messages.stop();
  }

  private handle(m: JsMsg): void {
    const [, device, name] = m.subject.split(".");
    if (device === undefined || name === undefined || name.startsWith("_")) return; // a cancel: ping never waits
    let req: CommandRequest;
    try {
      req = CommandRequest.parse(m.json());
    } catch {
      return;
    }
    const deliveredAt = Date.now();
    const base = { id: req.id, device, deliveredAt };
    if (deliveredAt > req.createdAt + req.ttlMs) {
      this.emit({ ...base, state: "expired", at: deliveredAt, error: { code: ErrorCode.Expired, message: "its TTL passed before delivery" } });
    } else if (req.name !== "ping") {
      this.emit({ ...base, state: "rejected", at: deliveredAt, error: { code: ErrorCode.Rejected, message: `a simulated device runs ping only, not ${req.name}` } });
    } else {
      // As the agent does for a command that ends within PROGRESS_EVENT_MS: the terminal event alone.
      const at = Date.now();
      this.emit({ ...base, state: "succeeded", at, startedAt: deliveredAt, finishedAt: at, result: { pong: true, device, at, agent: AGENT_VERSION, simulated: true } });
    }
  }

  /** Pipelined: events of one command are published in order on one connection, acks awaited apart. */
  private emit(ev: CommandEvent): void {
    jetstream(this.nc)
      .publish(Subjects.commandResult(ev.device, ev.id), JSON.stringify(ev), { msgID: `${ev.device}:cmd:${ev.id}:${ev.state}` })
      .catch(this.onError);
  }
}

/** The KV `shards` record naming `ids` as direct devices (reused if one exists), and its stream ready. */
async function directShard(nc: NatsConnection, ids: string[]): Promise<string> {
  const kv = await new Kvm(nc).open(Assets.kvShards);
  const name = (await findShard(kv, ids[0] as string)) ?? (await createShard(kv, ids));
  const jsm = await jetstreamManager(nc);
  const want = Subjects.upAll(ids[0] as string);
  await waitFor(async () => (await jsm.streams.info(name).catch(() => null))?.config.subjects?.includes(want) === true, {
    timeoutMs: SHARD_READY_MS,
    intervalMs: 500,
    what: `hub shard ${name} for the simulated devices (made by the gateway's shard repair: is a gateway running?)`,
  });
  return name;
}

async function shardNames(kv: KV): Promise<string[]> {
  const names: string[] = [];
  for await (const k of await kv.keys()) if (k.startsWith(Assets.fleetUpShardPrefix)) names.push(k);
  return names;
}

async function findShard(kv: KV, first: string): Promise<string | undefined> {
  for (const name of await shardNames(kv)) {
    const e = await kv.get(name);
    if (e?.operation === "PUT" && e.json<{ direct?: string[] }>().direct?.includes(first)) return name;
  }
  return undefined;
}

async function createShard(kv: KV, ids: string[]): Promise<string> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const n = Math.max(-1, ...(await shardNames(kv)).map((k) => Number(k.slice(Assets.fleetUpShardPrefix.length)) || 0)) + 1;
    const name = Assets.fleetUpShard(n);
    try {
      await kv.create(name, JSON.stringify({ devices: [], direct: ids }));
      return name;
    } catch (err) {
      if (attempt === 15) throw new CanopyError(ErrorCode.Conflict, `could not register a hub shard for simulated devices: ${errorMessage(err)}`, { cause: err });
    }
  }
  throw new CanopyError(ErrorCode.Conflict, "could not register a hub shard for simulated devices");
}
