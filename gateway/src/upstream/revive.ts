import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { nuid } from "@nats-io/nats-core";
import { Assets, Subjects } from "@canopy/protocol";
import { mapLimit } from "../kv/read.js";
import { sourceDevice } from "../registry/shards.js";
import type { GatewayTask } from "../service/gateway.js";

/**
 * Revives hub sources that nats-server left in its retry backoff although the device is reachable.
 *
 * Measured on 2.15.1: when a shard's source consumer cannot be created (the device's leaf is not
 * connected yet, or the hub just restarted and asked before the leaf's JetStream API interest
 * arrived), the server retries after 10 s, 20 s, 30 s … up to 2 min, and the retry it makes when a
 * leaf connects is skipped while an earlier request is still in flight. A hub restart with 30,000
 * messages waiting drained 39–41 s later. Removing a source and adding it back (same name and
 * external API, so the same internal name) makes the server set it up at once, from the sequence
 * after the last message of that source the shard holds: no gap, no duplicate. 0.2 s instead of 39 s.
 *
 * A source counts as stuck when it has had no contact for longer than `staleMs` (or never had any);
 * it is revived only when the device's JetStream API answers, i.e. the source can work now.
 */
export interface ReviveOptions {
  staleMs: number;
  /** Do not revive the same device again within this long. */
  cooldownMs: number;
  probeTimeoutMs: number;
}

const DEFAULTS: ReviveOptions = { staleMs: 4_000, cooldownMs: 8_000, probeTimeoutMs: 1_500 };

export class SourceReviver {
  private readonly lastRevived = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: ReviveOptions = DEFAULTS,
  ) {}

  /** One pass over every shard; returns the devices whose sources were revived. */
  async pass(now = Date.now()): Promise<string[]> {
    const jsm = await jetstreamManager(this.nc);
    const revived: string[] = [];
    for await (const si of jsm.streams.list()) {
      const name = si.config.name;
      if (!name.startsWith(Assets.fleetUpShardPrefix)) continue;
      const stuck = (si.sources ?? [])
        .filter((s) => s.active < 0 || s.active / 1e6 > this.opts.staleMs)
        .map((s) => sourceDevice(s))
        .filter((d): d is string => d !== undefined && now - (this.lastRevived.get(d) ?? 0) > this.opts.cooldownMs);
      if (stuck.length === 0) continue;
      const reachable = (
        await mapLimit(stuck, 32, async (d) => ((await this.reachable(d)) ? d : undefined))
      ).filter((d): d is string => d !== undefined);
      if (reachable.length === 0) continue;
      await this.readd(jsm, si.config, new Set(reachable));
      for (const d of reachable) this.lastRevived.set(d, now);
      revived.push(...reachable);
    }
    return revived;
  }

  /**
   * The device's JetStream API answers through its leaf link. The answer comes back on the device's
   * own reply subject (`qr.<dev>.<token>`): its credentials do not let it publish into operator inboxes.
   */
  private async reachable(device: string): Promise<boolean> {
    const reply = Subjects.queryReply(device, nuid.next());
    const sub = this.nc.subscribe(reply, { max: 1, timeout: this.opts.probeTimeoutMs });
    this.nc.publish(`${Subjects.deviceJsApi(device)}.STREAM.INFO.${Assets.upStream}`, "", { reply });
    try {
      for await (const m of sub) return !(m.headers?.code && m.headers.code >= 400) && !m.string().includes('"error"');
      return false;
    } catch {
      return false;
    }
  }

  private async readd(jsm: JetStreamManager, cfg: StreamConfig, devices: Set<string>): Promise<void> {
    const all = cfg.sources ?? [];
    const kept = all.filter((s) => !devices.has(sourceDevice(s) ?? ""));
    await jsm.streams.update(cfg.name, { ...cfg, sources: kept });
    await jsm.streams.update(cfg.name, { ...cfg, sources: all });
  }
}

export function sourceReviveTask(): GatewayTask {
  let reviver: SourceReviver | undefined;
  return {
    name: "source-revive",
    intervalMs: 2_000,
    async run(nc) {
      reviver ??= new SourceReviver(nc);
      await reviver.pass();
    },
  };
}
