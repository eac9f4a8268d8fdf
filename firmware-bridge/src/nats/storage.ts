import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { CanopyError, ErrorCode, Subjects } from "@canopy/protocol";

/** A state older than this is not trusted (agent gone): the bridge then retries as for any outage. */
const FRESH_MS = 10_000;

/**
 * The data partition as the agent's disk guard last saw it (`local.storage`, every ~2 s). While it says
 * full, a publish that UP did not ack is refused back to the MCU instead of retried: a full disk can
 * last for hours, and an MQTT client or serial MCU waiting on an ack it never gets looks like a hang.
 */
export class StorageWatch {
  private fullAt: number | undefined;
  private sub: Subscription | undefined;

  listen(nc: NatsConnection): void {
    this.sub = nc.subscribe(Subjects.localStorage, {
      callback: (_err, m) => {
        try {
          const s = m.json<{ full?: unknown }>();
          this.fullAt = s.full === true ? Date.now() : undefined;
        } catch {
          /* not ours: ignore */
        }
      },
    });
  }

  /** The error to give the MCU when the partition is full, else undefined. */
  refusal(now = Date.now()): CanopyError | undefined {
    if (this.fullAt === undefined || now - this.fullAt > FRESH_MS) return undefined;
    return new CanopyError(ErrorCode.DiskFull, "the device's data partition is full: message not stored");
  }

  close(): void {
    this.sub?.unsubscribe();
  }
}
