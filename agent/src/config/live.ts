import type { JetStreamManager } from "@nats-io/jetstream";
import { CanopyError, ErrorCode } from "@canopy/protocol";
import { ensureUpStream, upMaxBytesFor } from "../up/stream.js";
import { setLogLevel, type Logger } from "../logging.js";
import type { AgentOptions } from "../options.js";

/**
 * Agent settings applied without a restart. `undefined` puts a setting back to what the agent booted
 * with (its flags / config file), which is what an unset key means.
 */
export class LiveSettings {
  private heartbeatMs: number | undefined;
  private upMaxBytes: number | undefined;
  private upMaxAgeMs: number | undefined;
  private readonly bootLevel: string;

  constructor(
    private readonly device: string,
    private readonly options: AgentOptions,
    private readonly jsm: JetStreamManager,
    private readonly log: Logger,
    /** The leaf's store limit: UP stays within half of it, also when set live. */
    private readonly leafMaxFileStore = Infinity,
  ) {
    this.bootLevel = log.level;
  }

  /** Overrides the presence interval (the reporter takes `heartbeatMs` from status contributors). */
  get heartbeatOverrideMs(): number | undefined {
    return this.heartbeatMs;
  }

  async apply(key: string, value: unknown): Promise<void> {
    switch (key) {
      case "log.level":
        setLogLevel(this.log, typeof value === "string" ? value : this.bootLevel);
        return;
      case "heartbeat.interval":
        this.heartbeatMs = typeof value === "number" ? value : undefined;
        return;
      case "up.maxBytes": {
        const next = typeof value === "number" ? value : undefined;
        const cap = upMaxBytesFor(Infinity, this.leafMaxFileStore);
        // Refused, not shrunk: the operator asked for this size, and a rollout's health gate sees the failure.
        if (next !== undefined && next > cap) {
          throw new CanopyError(ErrorCode.InvalidInput, `${next} bytes is more than this device's UP may take (${cap} bytes: half of the leaf's store limit on its data partition)`);
        }
        this.upMaxBytes = next;
        await this.updateUp();
        return;
      }
      case "up.maxAge":
        this.upMaxAgeMs = typeof value === "number" ? value : undefined;
        await this.updateUp();
        return;
      default:
        throw new Error(`${key} is not a live setting`);
    }
  }

  /** Stream limits change in place (`streams.update`); stored data stays. */
  private async updateUp(): Promise<void> {
    await ensureUpStream(this.jsm, this.device, {
      maxBytes: this.upMaxBytes ?? upMaxBytesFor(this.options.up.maxBytes, this.leafMaxFileStore),
      maxAgeMs: this.upMaxAgeMs ?? this.options.up.maxAge,
      duplicateWindowMs: this.options.up.duplicateWindow,
    });
  }
}
