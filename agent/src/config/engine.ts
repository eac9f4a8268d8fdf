import { configKeySpec, RenderedConfig, decode, errorMessage, validateSetting, type ConfigEvent, type ConfigValue } from "@canopy/protocol";
import type { AppliedConfig, ConfigStore } from "./store.js";
import type { Logger } from "../logging.js";

/** One entry of the device's `cfg` mirror, key already stripped of the `<dev>.` prefix. */
export interface ConfigChange {
  key: string;
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
  data?: Uint8Array;
}

export interface EngineDeps {
  store: ConfigStore;
  /** Applies an agent-owned live setting; `undefined` = back to the boot default. Throws on failure. */
  applyLive(key: string, value: unknown): Promise<void>;
  /** Delivers the settings apps consume (file + announcement). */
  deliver(settings: Record<string, ConfigValue>, changed: string[], revision: number): Promise<void>;
  report(event: ConfigEvent): void;
  /** Something changed that belongs in the status record. */
  changed(): void;
  log: Logger;
}

const MAX_ERROR = 300;

/**
 * Validates and applies config changes one at a time, persists what runs before reporting, and
 * reports each hub revision once (a re-delivered revision, after a restart or a re-watch, is skipped
 * unless a reload forces it, and a forced re-apply does not report again).
 */
export class ConfigEngine {
  private state: AppliedConfig;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: EngineDeps) {
    this.state = deps.store.load();
  }

  get applied(): Readonly<AppliedConfig> {
    return this.state;
  }

  /** Re-applies what was applied before the restart, before the hub (or the mirror) is reachable. */
  boot(): Promise<void> {
    return this.serial(async () => {
      for (const [key, value] of Object.entries(this.state.effective)) {
        const v = validateSetting(key, value);
        if (v.owned && v.ok && v.spec.live) {
          await this.deps.applyLive(key, v.value).catch((err) => this.deps.log.warn({ key, err: errorMessage(err) }, "boot apply failed"));
        }
      }
      await this.deps.deliver(this.appSettings(), Object.keys(this.appSettings()), this.state.revision);
    });
  }

  handle(change: ConfigChange, opts: { force?: boolean } = {}): Promise<void> {
    return this.serial(() => this.process(change, opts.force ?? false));
  }

  /** Makes what runs equal to `entries` (the mirror's current content): re-applies, drops the rest. */
  reconcile(entries: ConfigChange[]): Promise<{ failed: Array<{ key: string; error: string }> }> {
    return this.serial(async () => {
      const present = new Set(entries.map((e) => e.key));
      for (const e of entries) await this.process(e, true);
      for (const key of Object.keys(this.state.effective)) {
        if (!present.has(key)) await this.process({ key, revision: this.state.keys[key]?.revision ?? 0, operation: "DEL" }, true);
      }
      const failed = Object.entries(this.state.keys)
        .filter(([k, s]) => present.has(k) && s.status === "failed")
        .map(([key, s]) => ({ key, error: s.error ?? "failed" }));
      return { failed };
    });
  }

  private async process(c: ConfigChange, force: boolean): Promise<void> {
    const prev = this.state.keys[c.key];
    const seen = prev !== undefined && prev.revision >= c.revision;
    if (seen && !force) return;
    if (c.operation !== "PUT") {
      await this.remove(c, seen);
      return;
    }
    let error: string | undefined;
    let value: ConfigValue | undefined;
    try {
      value = decode(RenderedConfig, c.data ?? new Uint8Array()).value;
      const v = validateSetting(c.key, value);
      if (!v.ok) error = v.error;
      else if (v.owned && v.spec.live) await this.deps.applyLive(c.key, v.value);
    } catch (err) {
      error = `${c.key}: ${errorMessage(err)}`;
    }
    const at = Date.now();
    // The applied revision is the last one that applied: a refused one is reported, never shown as running.
    const next: AppliedConfig = {
      effective: { ...this.state.effective },
      keys: { ...this.state.keys },
      revision: error ? this.state.revision : Math.max(this.state.revision, c.revision),
      appliedAt: error ? (this.state.appliedAt ?? at) : at,
    };
    if (error === undefined && value !== undefined) next.effective[c.key] = value;
    const running = error ? (prev?.status === "applied" ? prev.revision : prev?.appliedRevision) : c.revision;
    next.keys[c.key] = {
      revision: c.revision,
      status: error ? "failed" : "applied",
      at,
      ...(error ? { error: error.slice(0, MAX_ERROR) } : {}),
      ...(running === undefined ? {} : { appliedRevision: running }),
    };
    await this.commit(next, error === undefined && !isLive(c.key) ? [c.key] : []);
    if (error) this.deps.log.warn({ key: c.key, revision: c.revision, err: error }, "config value rejected");
    else this.deps.log.info({ key: c.key, revision: c.revision }, "config applied");
    if (!seen) {
      this.deps.report({ key: c.key, revision: c.revision, status: error ? "failed" : "applied", ...(error ? { error: error.slice(0, MAX_ERROR) } : {}), at });
    }
  }

  private async remove(c: ConfigChange, seen: boolean): Promise<void> {
    const had = c.key in this.state.effective || c.key in this.state.keys;
    if (!had) return;
    let error: string | undefined;
    const live = isLive(c.key);
    if (live) {
      await this.deps.applyLive(c.key, undefined).catch((err) => (error = `${c.key}: reverting to default: ${errorMessage(err)}`));
    }
    const effective = { ...this.state.effective };
    const keys = { ...this.state.keys };
    delete effective[c.key];
    delete keys[c.key];
    const at = Date.now();
    await this.commit({ effective, keys, revision: Math.max(this.state.revision, c.revision), appliedAt: at }, live ? [] : [c.key]);
    this.deps.log.info({ key: c.key, revision: c.revision }, "config key removed");
    if (!seen) {
      this.deps.report({ key: c.key, revision: c.revision, status: error ? "failed" : "applied", removed: true, at, ...(error ? { error } : {}) });
    }
  }

  private async commit(next: AppliedConfig, appChanged: string[]): Promise<void> {
    await this.deps.store.save(next);
    this.state = next;
    if (appChanged.length > 0) {
      await this.deps.deliver(this.appSettings(), appChanged, next.revision).catch((err) =>
        this.deps.log.error({ err: errorMessage(err) }, "cannot deliver config to apps"),
      );
    }
    this.deps.changed();
  }

  /** Every applied setting the agent does not consume itself. */
  private appSettings(): Record<string, ConfigValue> {
    return Object.fromEntries(Object.entries(this.state.effective).filter(([k]) => !isLive(k)));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

function isLive(key: string): boolean {
  return configKeySpec(key)?.live !== undefined;
}
