import type { JetStreamManager } from "@nats-io/jetstream";
import { Subjects, errorMessage, sleep, type UpBacklog } from "@canopy/protocol";
import type { AgentState } from "../state/store.js";
import type { UpPublisher } from "./publisher.js";
import { readUpBacklog } from "./backlog.js";
import type { Logger } from "../logging.js";

const DISCARDED_KEY = "up.discarded";
const FIRST_SEQ_KEY = "up.firstSeq";
const HUB_HAD_KEY = "up.hubHad";

/**
 * Watches UP on its own schedule (it matters most while the hub is unreachable): keeps the backlog
 * for the status record and turns a loss into an event and a counter, never a silent one. A message
 * counts as lost only when it left UP (full and discarding the oldest, or past max_age) before the
 * hub had it: sequences removed since the last check above the highest sequence the hub's source
 * consumer was ever seen to have delivered (persisted, so a link that is down now still counts).
 * A healthy full stream whose oldest messages are already in the hub loses nothing and says nothing.
 */
export class UpMonitor {
  private last: UpBacklog | undefined;

  constructor(
    private readonly device: string,
    private readonly jsm: JetStreamManager,
    private readonly state: AgentState,
    private readonly publisher: UpPublisher,
    private readonly log: Logger,
    private readonly intervalMs = 2_000,
  ) {}

  get backlog(): UpBacklog | undefined {
    return this.last;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.check().catch((err) => this.log.debug({ err: errorMessage(err) }, "UP check failed"));
      if (!(await sleep(this.intervalMs, signal))) return;
    }
  }

  async check(): Promise<UpBacklog> {
    const b = await readUpBacklog(this.jsm);
    let discarded = Number(this.state.meta.get(DISCARDED_KEY) ?? 0);
    const prevFirst = Number(this.state.meta.get(FIRST_SEQ_KEY) ?? b.firstSeq);
    const hubHad = Math.max(Number(this.state.meta.get(HUB_HAD_KEY) ?? 0), b.delivered ?? 0);
    if (b.delivered !== undefined && hubHad > Number(this.state.meta.get(HUB_HAD_KEY) ?? 0)) void this.state.meta.put(HUB_HAD_KEY, hubHad);
    const count = lostBetween(prevFirst, b.firstSeq, hubHad);
    if (count > 0) {
      discarded += count;
      void this.state.meta.put(DISCARDED_KEY, discarded);
      this.log.warn({ count, total: discarded, firstSeq: b.firstSeq, hubHad }, "UP removed messages the hub never had");
      this.publisher
        .publish(Subjects.upDiscarded(this.device), JSON.stringify({ count, total: discarded, firstSeq: b.firstSeq, at: Date.now() }))
        .catch(() => {});
    }
    if (b.firstSeq !== prevFirst) void this.state.meta.put(FIRST_SEQ_KEY, b.firstSeq);
    const { full: _full, delivered: _delivered, ...rest } = b;
    this.last = { ...rest, discarded };
    return this.last;
  }
}

/** Sequences removed from UP ([prevFirst, first-1]) that the hub had not received (> hubHad). */
export function lostBetween(prevFirst: number, first: number, hubHad: number): number {
  if (first <= prevFirst) return 0;
  return Math.max(0, first - Math.max(prevFirst, hubHad + 1));
}
