import { KvWatchInclude } from "@nats-io/kv";
import type { Subscription } from "@nats-io/transport-node";
import { CommandEvent, CommandRecord, Subjects, commandKey, isTerminal, type CommandRecord as Rec } from "@canopy/protocol";
import type { CommandStore } from "./store.js";
import { applyEvent } from "./state.js";
import { mapLimit } from "../kv/read.js";

/** Gets in flight at once when reading the current records (a fan-out waits for 1,000s). */
const READ_IN_FLIGHT = 64;
/**
 * Up to this many commands, a wait also listens for the results themselves as they cross the hub
 * (below); a larger fan-out waits on KV `commands` alone, so it does not draw every device's events
 * through the hub twice.
 */
export const LIVE_MAX = 16;
/** How long a CLI waits, after printing live results, for KV `commands` to hold them (see untilRecorded). */
export const RECORDED_WAIT_MS = 3_000;

/**
 * Waits until every command is terminal or `timeoutMs` passes; returns the latest records (in the
 * given order). Follows KV updates first, then reads current values, so no transition is missed.
 *
 * A few commands (an operator's `cmd send --wait`) are also settled from the device's result event as
 * it crosses the hub: a core subscription on `up.<dev>.evt.cmd.*` sees the agent's publish into its UP
 * stream (journaled on the device before it is sent, then stored by the hub's shard), and the record
 * is folded with the same `applyEvent` the gateway's ingest uses. KV `commands` has the same record a
 * few ms later: on a quiet 2-core machine the hub saw a ping's result 3.7–4.4 ms after the send and
 * KV had it 1.7–2.7 ms after that. The listening is best effort: a user not allowed to subscribe
 * there, or an event lost on the way, leaves the KV path to finish the wait.
 *
 * Pass a `feed` opened before the send (`ResultFeed.open`): its subscriptions and KV watch are then in
 * place before the result can exist, and several waits share them. Full records passed in (what
 * `CommandSender.send` returns) are the starting point for folding events, so a result that arrives
 * before the current record was read still ends the wait at once.
 */
export async function waitForCommands(
  store: CommandStore,
  commands: Array<Pick<Rec, "device" | "id"> | Rec>,
  timeoutMs: number,
  signal?: AbortSignal,
  onProgress?: (done: number, total: number) => void,
  feed?: ResultFeed,
): Promise<{ records: Rec[]; complete: boolean }> {
  const keys = commands.map((c) => commandKey(c.device, c.id));
  const latest = new Map<string, Rec>();
  const pending = new Set(keys);
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const note = (key: string, rec: Rec): void => {
    // An update that arrives after the end was seen is older: keep the end.
    const had = latest.get(key);
    if (had && isTerminal(had.state) && !isTerminal(rec.state)) return;
    latest.set(key, rec);
    if (isTerminal(rec.state) && pending.delete(key)) onProgress?.(keys.length - pending.size, keys.length);
    if (pending.size === 0) finish();
  };
  const own = feed ? undefined : await ResultFeed.open(store, commands.map((c) => c.device), { live: commands.length <= LIVE_MAX });
  const results = (feed ?? own) as ResultFeed;
  // Events wait in the feed until the command's record is in hand to fold them into.
  const fold = (key: string): void => {
    if (!pending.has(key) || !latest.has(key)) return;
    for (const ev of results.take(key)) {
      const next = applyEvent(latest.get(key) as Rec, ev);
      if (next) note(key, next);
    }
  };
  const unfollow = results.follow((key, rec) => {
    if (!pending.has(key)) return;
    if (rec) note(key, rec);
    fold(key);
  });
  const timer = setTimeout(finish, timeoutMs);
  signal?.addEventListener("abort", finish, { once: true });
  try {
    for (const c of commands) {
      const r = "state" in c ? CommandRecord.safeParse(c) : undefined;
      const key = commandKey(c.device, c.id);
      if (r?.success) note(key, r.data);
      fold(key);
    }
    if (pending.size > 0) {
      await mapLimit(commands, READ_IN_FLIGHT, async (c) => {
        const key = commandKey(c.device, c.id);
        if (!pending.has(key)) return;
        const s = await store.get(c.device, c.id);
        if (!s) return;
        note(key, s.record);
        fold(key);
      });
    }
    if (pending.size > 0) await finished;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", finish);
    unfollow();
    own?.close();
  }
  // A last read: the timer may have ended the wait between an update and its delivery.
  if (pending.size > 0) {
    const index = new Map(keys.map((k, i) => [k, i]));
    await mapLimit([...pending], READ_IN_FLIGHT, async (key) => {
      const c = commands[index.get(key) ?? -1];
      const s = c ? await store.get(c.device, c.id) : undefined;
      if (s) note(key, s.record);
    });
  }
  const records = keys.flatMap((k) => {
    const r = latest.get(k);
    return r ? [r] : [];
  });
  return { records, complete: pending.size === 0 };
}

/**
 * Waits (at most `timeoutMs`, best effort) until KV `commands` holds a terminal record for each of
 * these commands. A wait that ended on a live result is a few ms ahead of the gateway's ingest: a CLI
 * calls this after printing, before it exits, so a `cmd status` that follows agrees with what it printed.
 * `feed`, the one the wait used: its live events are dropped and its KV watch (open since before the
 * send, so nothing is missed) serves this wait too; the caller still closes it. Without one, a KV-only
 * feed is opened and closed here.
 */
export async function untilRecorded(store: CommandStore, commands: ReadonlyArray<Pick<Rec, "device" | "id">>, timeoutMs: number, signal?: AbortSignal, feed?: ResultFeed): Promise<boolean> {
  if (commands.length === 0) return true;
  feed?.endLive();
  const kv = feed ?? (await ResultFeed.open(store, commands.map((c) => c.device), { live: false }));
  try {
    const ids = commands.map((c) => ({ device: c.device, id: c.id }));
    return (await waitForCommands(store, ids, timeoutMs, signal, undefined, kv)).complete;
  } finally {
    if (!feed) kv.close();
  }
}

/** Events kept per command until a wait takes them: bounded, the oldest command's dropped first. */
const LIVE_KEEP = 256;

/**
 * What command waits follow: KV `commands` updates for the devices (one watch), and with `live`
 * their result events as they cross the hub (core subscriptions on `up.<dev>.evt.cmd.*`), the events
 * kept until a wait takes them. Opened before sending, both are in place ahead of the command: the
 * flush makes the hub register the subscriptions, and the interest reaches the device's leaf on the
 * same link as the command, before it.
 */
export class ResultFeed {
  private readonly kept = new Map<string, CommandEvent[]>();
  private readonly listeners = new Set<(key: string, rec?: Rec) => void>();
  private readonly subs: Subscription[] = [];
  private watch: { stop(): void } | undefined;

  private constructor() {}

  static async open(store: CommandStore, devices: readonly string[], opts: { live: boolean } = { live: true }): Promise<ResultFeed> {
    const feed = new ResultFeed();
    const unique = [...new Set(devices)];
    if (opts.live) {
      for (const d of unique) {
        const sub = listen(store, d, (ev) => feed.keep(ev));
        if (sub) feed.subs.push(sub);
      }
      await store.nc.flush().catch(() => {});
    }
    const watch = await store.kv.watch({ key: unique.length === 1 ? `${unique[0]}.*` : "*.*", include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
    feed.watch = watch;
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT" || feed.listeners.size === 0) continue;
        const r = CommandRecord.safeParse(e.json());
        if (r.success) for (const cb of feed.listeners) cb(e.key, r.data);
      }
    })().catch(() => {});
    return feed;
  }

  /** The events received for `key` so far (each given out once). */
  take(key: string): CommandEvent[] {
    const evs = this.kept.get(key) ?? [];
    this.kept.delete(key);
    return evs;
  }

  /** Calls `cb` with each record update and each event's command key as they arrive; returns the undo. */
  follow(cb: (key: string, rec?: Rec) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Stops the live events (subscriptions and kept events); the KV watch goes on. */
  endLive(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
    this.kept.clear();
  }

  close(): void {
    this.endLive();
    this.watch?.stop();
    this.listeners.clear();
  }

  private keep(ev: CommandEvent): void {
    const key = commandKey(ev.device, ev.id);
    const evs = this.kept.get(key);
    if (evs) evs.push(ev);
    else {
      if (this.kept.size >= LIVE_KEEP) this.kept.delete(this.kept.keys().next().value as string);
      this.kept.set(key, [ev]);
    }
    for (const cb of this.listeners) cb(key);
  }
}

/** A core subscription on one device's command results; undefined when it cannot be made. */
function listen(store: CommandStore, device: string, onEvent: (ev: CommandEvent) => void): Subscription | undefined {
  try {
    return store.nc.subscribe(`up.${device}.evt.cmd.*`, {
      callback: (err, m) => {
        if (err) return;
        let data: unknown;
        try {
          data = m.json();
        } catch {
          return;
        }
        const ev = CommandEvent.safeParse(data);
        // The hub lets a device publish under its own `up.<dev>.` only; the event must name it too.
        if (ev.success && ev.data.device === device && m.subject === Subjects.commandResult(device, ev.data.id)) onEvent(ev.data);
      },
    });
  } catch {
    return undefined;
  }
}
