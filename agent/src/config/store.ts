import type { Database } from "lmdb";
import type { ConfigKeyState, ConfigValue } from "@canopy/protocol";

/**
 * What the agent remembers of its config across restarts. `effective` is what runs (`{key: value}`,
 * applied values only) and `revision` the highest hub revision that applied successfully (a refused one
 * is in `keys` only): the live-query engine reads
 * `config.*` facts from these two LMDB keys, so their shape is part of the agent's contract.
 */
export interface AppliedConfig {
  effective: Record<string, ConfigValue>;
  keys: Record<string, ConfigKeyState>;
  revision: number;
  appliedAt?: number;
}

export interface ConfigStore {
  load(): AppliedConfig;
  /** Resolves once the state is on disk: reports go out only after this. */
  save(c: AppliedConfig): Promise<void>;
}

export class LmdbConfigStore implements ConfigStore {
  constructor(
    private readonly db: Database<unknown, string>,
    private readonly durable: () => Promise<void>,
  ) {}

  load(): AppliedConfig {
    const effective = this.db.get("effective");
    const keys = this.db.get("keys");
    const revision = this.db.get("revision");
    const appliedAt = this.db.get("appliedAt");
    return {
      effective: isRecord(effective) ? (effective as Record<string, ConfigValue>) : {},
      keys: isRecord(keys) ? (keys as Record<string, ConfigKeyState>) : {},
      revision: typeof revision === "number" ? revision : 0,
      ...(typeof appliedAt === "number" ? { appliedAt } : {}),
    };
  }

  async save(c: AppliedConfig): Promise<void> {
    await this.db.transaction(() => {
      void this.db.put("effective", c.effective);
      void this.db.put("keys", c.keys);
      void this.db.put("revision", c.revision);
      if (c.appliedAt !== undefined) void this.db.put("appliedAt", c.appliedAt);
    });
    await this.durable();
  }
}

/** For simulated agents (bench) and unit tests. */
export class MemoryConfigStore implements ConfigStore {
  private c: AppliedConfig = { effective: {}, keys: {}, revision: 0 };

  load(): AppliedConfig {
    return structuredClone(this.c);
  }

  save(c: AppliedConfig): Promise<void> {
    this.c = structuredClone(c);
    return Promise.resolve();
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
