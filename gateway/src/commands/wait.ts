import { KvWatchInclude } from "@nats-io/kv";
import { CommandRecord, commandKey, isTerminal, type CommandRecord as Rec } from "@canopy/protocol";
import type { CommandStore } from "./store.js";

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
    latest.set(key, rec);
    if (isTerminal(rec.state) && pending.delete(key)) onProgress?.(keys.length - pending.size, keys.length);
  };
  const stop = (): void => void watch.stop();
  const timer = setTimeout(stop, timeoutMs);
  signal?.addEventListener("abort", stop, { once: true });
  try {
    for (const c of commands) {
      const s = await store.get(c.device, c.id);
      if (s) note(commandKey(c.device, c.id), s.record);
    }
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
    for (const key of [...pending]) {
      const c = commands[keys.indexOf(key)];
      const s = c ? await store.get(c.device, c.id) : undefined;
      if (s) note(key, s.record);
    }
  }
  const records = keys.flatMap((k) => {
    const r = latest.get(k);
    return r ? [r] : [];
  });
  return { records, complete: pending.size === 0 };
}
