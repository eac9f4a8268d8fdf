import { CommandEvent, isTerminal, type CommandEvent as CommandEventT } from "@canopy/protocol";
import type { AgentState } from "../state/store.js";

/**
 * The command journal in LMDB (`journal` db, key = command id). The invariant behind "exactly once":
 * `running` is on disk before a handler starts and the terminal event is on disk before the message
 * is acked. A redelivered command whose entry is terminal is answered from here; one whose entry is
 * still `running` was interrupted by a crash and is never started again.
 */
export type JournalEntry =
  | { state: "running"; id: string; deliveredAt: number; startedAt: number }
  | { state: "done"; id: string; event: CommandEventT };

/** Entries older than the CMD stream's max_age (30 d) can no longer be redelivered. */
const KEEP_MS = 31 * 86_400_000;

export class CommandJournal {
  constructor(private readonly state: AgentState) {}

  get(id: string): JournalEntry | undefined {
    const v = this.state.journal.get(id) as JournalEntry | undefined;
    if (!v || typeof v !== "object") return undefined;
    if (v.state === "done") {
      const ev = CommandEvent.safeParse(v.event);
      return ev.success && isTerminal(ev.data.state) ? { state: "done", id, event: ev.data } : undefined;
    }
    return v.state === "running" ? v : undefined;
  }

  /** Durable before it resolves: call before starting the handler. */
  async markRunning(id: string, deliveredAt: number, startedAt: number): Promise<void> {
    void this.state.journal.put(id, { state: "running", id, deliveredAt, startedAt } satisfies JournalEntry);
    await this.state.durable();
  }

  /** Queues the terminal event; the caller awaits `state.durable()` (together with the outbox write). */
  recordDone(event: CommandEventT): void {
    void this.state.journal.put(event.id, { state: "done", id: event.id, event } satisfies JournalEntry);
  }

  /** Drops entries that no redelivery can reach any more. Returns how many were removed. */
  async prune(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const { key, value } of this.state.journal.getRange({})) {
      const e = value as Partial<JournalEntry> & { event?: { at?: number }; startedAt?: number };
      const at = e.state === "done" ? e.event?.at : e.startedAt;
      if (typeof at === "number" && now - at > KEEP_MS) {
        void this.state.journal.remove(key);
        removed++;
      }
    }
    if (removed > 0) await this.state.durable();
    return removed;
  }
}
