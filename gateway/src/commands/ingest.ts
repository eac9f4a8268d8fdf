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

/** Events being applied at once (across commands) before the reader waits for some to land. */
const MAX_IN_FLIGHT = 1_024;

/**
 * Reads a shard's command events and applies them to KV `commands`. Events of different commands
 * are applied concurrently (each a compare-and-set on its own key); events of one command are
 * applied in order, and those that queued up while its previous write was in flight are folded into
 * one write (a `running` followed by its `succeeded` is one KV update). The position saved is the
 * highest sequence below which every event has landed, so a crash re-reads at most what was in flight.
 */
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
  const lanes = new Map<string, { queue: Array<{ ev: CommandEvent; seq: number }>; done: Promise<void> }>();
  /** Sequences read but not yet applied; the position may not pass the lowest. */
  const unapplied = new Set<number>();
  let failure: unknown;
  let last = pos;
  let unsaved = 0;
  const safePos = (): number => (unapplied.size === 0 ? last : Math.min(...unapplied) - 1);
  // The position is saved off the event path (one save in flight, the newest wins): an event waits
  // for its own record write only. A lost save re-reads a few events, which applyEvent ignores.
  let saving: Promise<unknown> = Promise.resolve();
  let saved = pos;
  const save = (): void => {
    saving = saving
      .then(() => {
        const at = safePos();
        return at > saved ? store.kv.put(posKey, String((saved = at))) : undefined;
      })
      .catch(() => {});
  };
  const drain = async (key: string): Promise<void> => {
    const lane = lanes.get(key);
    try {
      while (lane && lane.queue.length > 0 && failure === undefined) {
        const batch = lane.queue.splice(0);
        const rec = await ingestEvents(store, cache, key, batch.map((b) => b.ev), log);
        if (rec?.secretSeq !== undefined && isTerminal(rec.state)) await eraseSecret(nc, store, rec);
        for (const b of batch) unapplied.delete(b.seq);
      }
    } catch (err) {
      failure ??= err;
      stop();
    } finally {
      lanes.delete(key);
    }
  };
  try {
    for await (const m of messages) {
      last = m.seq;
      const ev = parseEvent(m, log);
      if (ev) {
        unapplied.add(m.seq);
        const key = commandKey(ev.device, ev.id);
        const lane = lanes.get(key);
        if (lane) lane.queue.push({ ev, seq: m.seq });
        else {
          const fresh = { queue: [{ ev, seq: m.seq }], done: Promise.resolve() };
          lanes.set(key, fresh);
          fresh.done = drain(key);
        }
        while (unapplied.size >= MAX_IN_FLIGHT && lanes.size > 0) await Promise.race([...lanes.values()].map((l) => l.done));
      }
      if (++unsaved >= SAVE_EVERY || m.info.pending === 0) {
        save();
        unsaved = 0;
      }
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", stop);
    await Promise.allSettled([...lanes.values()].map((l) => l.done));
    save();
    await saving;
  }
  if (failure !== undefined) throw failure;
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

function parseEvent(m: JsMsg, log?: Logger): CommandEvent | undefined {
  try {
    const ev = decode(CommandEvent, m.data);
    if (m.subject !== `up.${ev.device}.evt.cmd.${ev.id}`) throw new Error(`subject ${m.subject} does not match the event`);
    return ev;
  } catch (err) {
    log?.warn({ subject: m.subject, seq: m.seq, err: errorMessage(err) }, "ignoring a malformed command event");
    return undefined;
  }
}

/** Folds one command's events into its record with one compare-and-set write (retried on conflict). */
async function ingestEvents(store: CommandStore, cache: Map<string, Stored>, key: string, events: CommandEvent[], log?: Logger): Promise<CommandRecord | undefined> {
  const first = events[0];
  if (!first) return undefined;
  const fold = (rec: CommandRecord, from: number): CommandRecord | undefined => {
    let cur: CommandRecord | undefined;
    for (const ev of events.slice(from)) cur = applyEvent(cur ?? rec, ev) ?? cur;
    return cur;
  };
  for (let attempt = 0; attempt < 16; attempt++) {
    const cur = cache.get(key) ?? (await store.get(first.device, first.id));
    if (!cur) {
      const base = recordFromEvent(first);
      const rec = fold(base, 1) ?? base;
      try {
        cache.set(key, { record: rec, revision: await store.create(rec) });
        return rec;
      } catch {
        cache.delete(key);
        continue; // created meanwhile: apply to that one
      }
    }
    const next = fold(cur.record, 0);
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
