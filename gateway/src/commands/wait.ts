import { KvWatchInclude } from "@nats-io/kv";
import { CommandRecord, commandKey, isTerminal, type CommandRecord as Rec } from "@canopy/protocol";
import type { CommandStore } from "./store.js";
import { mapLimit } from "../kv/read.js";

/** Gets in flight at once when reading the current records (a fan-out waits for 1,000s). */
const READ_IN_FLIGHT = 64;

/**
 * Waits until every command is terminal or `timeoutMs` passes; returns the latest records (in the
 * given order). Watches KV updates first, then reads current values, so no transition is missed.
 */
export async function waitForCommands(
  store: CommandStore,
  commands: Array<Pick<Rec, "device" | "id">>,
  timeoutMs: number,
  signal?: AbortSignal,
  onProgress?: (done: number, total: number) => void,
): Promise<{ records: Rec[]; complete: boolean }> {
  const keys = commands.map((c) => commandKey(c.device, c.id));
  const latest = new Map<string, Rec>();
  const devices = new Set(commands.map((c) => c.device));
  const filter = devices.size === 1 ? `${[...devices][0]}.*` : "*.*";
  const watch = await store.kv.watch({ key: filter, include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
  const pending = new Set(keys);
  const note = (key: string, rec: Rec): void => {
    // An update the watch delivers after the read already saw the end is older: keep the end.
    const had = latest.get(key);
    if (had && isTerminal(had.state) && !isTerminal(rec.state)) return;
    latest.set(key, rec);
    if (isTerminal(rec.state) && pending.delete(key)) onProgress?.(keys.length - pending.size, keys.length);
  };
  const stop = (): void => void watch.stop();
  const timer = setTimeout(stop, timeoutMs);
  signal?.addEventListener("abort", stop, { once: true });
  try {
    await mapLimit(commands, READ_IN_FLIGHT, async (c) => {
      const s = await store.get(c.device, c.id);
      if (s) note(commandKey(c.device, c.id), s.record);
    });
    if (pending.size > 0) {
      for await (const e of watch) {
        if (!pending.has(e.key) || e.operation !== "PUT") continue;
        const r = CommandRecord.safeParse(e.json());
        if (r.success) note(e.key, r.data);
        if (pending.size === 0) break;
      }
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", stop);
    watch.stop();
  }
  // A last read: the watch may have been stopped by the timer between an update and its delivery.
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
