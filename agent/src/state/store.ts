import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";

/**
 * What the agent must not forget across restarts, in LMDB: sequence counters, the upstream outbox,
 * the command journal, the applied config. `durable()` waits until a write is on disk: use it before
 * acknowledging anything to someone else.
 */
export class AgentState {
  readonly meta: Database<unknown, string>;
  readonly outbox: Database<OutboxEntry, number>;
  readonly journal: Database<unknown, string>;
  readonly config: Database<unknown, string>;

  private constructor(private readonly root: RootDatabase) {
    this.meta = root.openDB({ name: "meta" });
    this.outbox = root.openDB<OutboxEntry, number>({ name: "outbox" });
    this.journal = root.openDB({ name: "journal" });
    this.config = root.openDB({ name: "config" });
  }

  static open(dataDir: string): AgentState {
    const path = join(dataDir, "state");
    mkdirSync(path, { recursive: true });
    return new AgentState(open({ path, maxDbs: 16, compression: false }));
  }

  /** Resolves once every write issued so far is flushed to disk. */
  async durable(): Promise<void> {
    await this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}

export interface OutboxEntry {
  subject: string;
  data: string;
  headers?: Record<string, string>;
}
