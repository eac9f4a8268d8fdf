import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { Assets, CommandEvent, CommandSubjects, commandKey, decode, errorMessage, isTerminal, type CommandRecord } from "@canopy/protocol";
import { Shards } from "../registry/shards.js";
import type { GatewayTask } from "../service/gateway.js";
import type { Logger } from "../logging.js";
import { CommandStore, type Stored } from "./store.js";
import { applyEvent, inferExpiry, recordFromEvent } from "./state.js";

/** Each run reads for this long, then returns so the lease (TTL ≥ 15 s) is renewed between slices. */
const SLICE_MS = 8_000;
const SAVE_EVERY = 200;
const SWEEP_EVERY_MS = 30_000;

/**
 * Feeds KV `commands` from the command events that reach the hub's `FLEET_UP_<n>` shards: one
 * ordered consumer per shard filtered to `up.*.evt.cmd.*`, starting after the position stored in KV
 * (`ingest.pos.<shard>`). Re-reading after a crash is harmless: `applyEvent` is idempotent.
 */
export function commandResultsTask(log?: Logger): GatewayTask {
  let lastSweep = 0;
  return {
    name: "command-results",
    intervalMs: 100,
    async run(nc, signal) {
      const store = await CommandStore.open(nc);
      if (Date.now() - lastSweep > SWEEP_EVERY_MS) {
        lastSweep = Date.now();
        await sweepExpired(store);
        // A command can end before its sender recorded that it held secrets: erase those here.
        for (const rec of await store.list()) if (rec.secretSeq !== undefined && isTerminal(rec.state)) await eraseSecret(nc, store, rec);
      }
      const shards = (await (await Shards.open(nc)).list()).map((s) => s.name);
      await Promise.all(shards.map((s) => ingestShard(nc, store, s, signal, log)));
    },
  };
}

export async function ingestShard(nc: NatsConnection, store: CommandStore, shard: string, signal: AbortSignal, log?: Logger): Promise<void> {
  const posKey = `ingest.pos.${shard}`;
  const posEntry = await store.kv.get(posKey);
  const pos = posEntry && posEntry.operation === "PUT" ? Number(posEntry.string()) || 0 : 0;
  const consumer = await jetstream(nc).consumers.get(shard, {
    filter_subjects: CommandSubjects.allEvents,
    ...(pos > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: pos + 1 } : { deliver_policy: DeliverPolicy.All }),
  });
  const messages = await consumer.consume();
  const stop = (): void => void messages.stop();
  const timer = setTimeout(stop, SLICE_MS);
  signal.addEventListener("abort", stop, { once: true });
  // Records touched in this slice, with their revision: one KV write per event in the common case.
  const cache = new Map<string, Stored>();
  let last = pos;
  let unsaved = 0;
  // The position is saved off the event path (one save in flight, the newest wins): an event waits
  // for its own record write only. A lost save re-reads a few events, which applyEvent ignores.
  let saving: Promise<unknown> = Promise.resolve();
  let saved = pos;
  const save = (): void => {
    saving = saving.then(() => (last > saved ? store.kv.put(posKey, String((saved = last))) : undefined)).catch(() => {});
  };
  try {
    for await (const m of messages) {
      const rec = await ingestOne(store, cache, m, log);
      if (rec?.secretSeq !== undefined && isTerminal(rec.state)) await eraseSecret(nc, store, rec);
      last = m.seq;
      if (++unsaved >= SAVE_EVERY || m.info.pending === 0) {
        save();
        unsaved = 0;
      }
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", stop);
    save();
    await saving;
  }
}

/**
 * A request whose args held secrets is erased from the hub's CMD once the command ended (the device
 * has it, or never will): after delivery no clear-text copy stays on the hub.
 */
export async function eraseSecret(nc: NatsConnection, store: CommandStore, rec: CommandRecord): Promise<void> {
  const seq = rec.secretSeq;
  if (seq === undefined) return;
  await jetstreamManager(nc)
    .then((jsm) => jsm.streams.deleteMessage(Assets.cmdStream, seq, true))
    .catch(() => false); // already gone (max_age) or erased by an earlier pass
  await store.modify(rec.device, rec.id, (r) => {
    const { secretSeq: _erased, ...rest } = r;
    return rest;
  });
}

async function ingestOne(store: CommandStore, cache: Map<string, Stored>, m: JsMsg, log?: Logger): Promise<CommandRecord | undefined> {
  let ev: CommandEvent;
  try {
    ev = decode(CommandEvent, m.data);
    if (m.subject !== `up.${ev.device}.evt.cmd.${ev.id}`) throw new Error(`subject ${m.subject} does not match the event`);
  } catch (err) {
    log?.warn({ subject: m.subject, seq: m.seq, err: errorMessage(err) }, "ignoring a malformed command event");
    return;
  }
  const key = commandKey(ev.device, ev.id);
  for (let attempt = 0; attempt < 16; attempt++) {
    const cur = cache.get(key) ?? (await store.get(ev.device, ev.id));
    if (!cur) {
      const rec = recordFromEvent(ev);
      try {
        cache.set(key, { record: rec, revision: await store.create(rec) });
        return rec;
      } catch {
        cache.delete(key);
        continue; // created meanwhile: apply to that one
      }
    }
    const next = applyEvent(cur.record, ev);
    if (!next) return undefined;
    const revision = await store.update(next, cur.revision);
    if (revision !== undefined) {
      cache.set(key, { record: next, revision });
      return next;
    }
    cache.delete(key); // someone else wrote (e.g. a cancel request): re-read
  }
  log?.warn({ key }, "gave up applying a command event after repeated conflicts");
  return undefined;
}

/** Marks commands still `queued` past their TTL as expired (see `inferExpiry`). */
export async function sweepExpired(store: CommandStore, now = Date.now()): Promise<number> {
  let n = 0;
  for (const rec of await store.list()) {
    if (!inferExpiry(rec, now)) continue;
    await store.modify(rec.device, rec.id, (r) => inferExpiry(r, Date.now()));
    n++;
  }
  return n;
}
