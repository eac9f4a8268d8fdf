import type { JetStreamManager } from "@nats-io/jetstream";
import { Subjects, errorMessage, sleep, type UpBacklog } from "@canopy/protocol";
import type { AgentState } from "../state/store.js";
import type { UpPublisher } from "./publisher.js";
import { readUpBacklog } from "./backlog.js";
import type { Logger } from "../logging.js";

const DISCARDED_KEY = "up.discarded";
const FIRST_SEQ_KEY = "up.firstSeq";

/**
 * Watches UP on its own schedule (it matters most while the hub is unreachable): keeps the backlog
 * for the status record and turns "full and dropping the oldest" into an event and a counter, never
 * a silent loss. A first sequence that moves while the stream is near max_bytes counts as discarded.
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
    if (b.full && b.firstSeq > prevFirst) {
      const count = b.firstSeq - prevFirst;
      discarded += count;
      void this.state.meta.put(DISCARDED_KEY, discarded);
      this.log.warn({ count, total: discarded, firstSeq: b.firstSeq }, "UP full: oldest messages discarded");
      this.publisher
        .publish(Subjects.upDiscarded(this.device), JSON.stringify({ count, total: discarded, firstSeq: b.firstSeq, at: Date.now() }))
        .catch(() => {});
    }
    if (b.firstSeq !== prevFirst) void this.state.meta.put(FIRST_SEQ_KEY, b.firstSeq);
    const { full: _full, ...rest } = b;
    this.last = { ...rest, discarded };
    return this.last;
  }
}
