import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { Subjects, type DeviceRecord, type DeviceStatus } from "@canopy/protocol";
import { QueryResponder } from "../query/responder.js";
import type { QueryCompiler } from "../query/cel.js";
import type { SimProfile } from "./facts.js";
import { CompactPolicy, beatOf, signature } from "../presence/compact.js";

export interface SimShared {
  nc: NatsConnection;
  devices: KV;
  status: KV;
  /** KV `beat` for compact heartbeats; undefined: a full status record on every heartbeat (as before issue 15). */
  beat: KV | undefined;
  compiler: QueryCompiler;
  version: string;
  heartbeatMs: number;
}

/**
 * One simulated agent: no leaf server, no LMDB; a registry record, presence in KV `status` and KV
 * `beat` like a real agent's (the same CompactPolicy), and query subscriptions answered by the real
 * agent's `QueryResponder`.
 */
export class SimDevice {
  private readonly subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private readonly responder: QueryResponder;
  private readonly policy = new CompactPolicy();

  constructor(
    readonly id: string,
    readonly groups: string[],
    private readonly profile: SimProfile,
    private readonly shared: SimShared,
    private readonly onError: (err: unknown) => void,
  ) {
    this.responder = new QueryResponder(id, () => this.facts(), shared.compiler);
  }

  /** Enrolls, subscribes, reports presence once; then heartbeats with a random phase. */
  async start(): Promise<void> {
    await this.enroll();
    const subjects = [Subjects.queryAll, Subjects.queryDevice(this.id), ...this.groups.map((g) => Subjects.queryGroup(g))];
    for (const subject of subjects) {
      this.subs.push(
        this.shared.nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            this.responder.answerOn(msg.data).then((r) => r && this.shared.nc.publish(r.subject, r.data), this.onError);
          },
        }),
      );
    }
    await this.report("online");
    const hb = this.shared.heartbeatMs;
    this.timer = setTimeout(() => {
      this.beat();
      this.timer = setInterval(() => this.beat(), hb);
      this.timer.unref();
    }, Math.floor(Math.random() * hb));
    this.timer.unref();
  }

  async stop(signOff: boolean): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    if (signOff) await this.report("stopping").catch(() => {});
  }

  private facts(): SimProfile["facts"] {
    const f = this.profile.facts;
    return { ...f, agent: { ...f.agent, uptime: Math.round((Date.now() - this.startedAt) / 1000) } };
  }

  private async enroll(): Promise<void> {
    const existing = await this.shared.devices.get(this.id);
    let created = Date.now();
    if (existing && existing.operation === "PUT") {
      const prev = existing.json<Partial<DeviceRecord>>();
      if (typeof prev.created === "number") created = prev.created;
    }
    const record: DeviceRecord = { id: this.id, groups: this.groups, created, labels: { simulated: "true" } };
    await this.shared.devices.put(this.id, JSON.stringify(record));
  }

  /**
   * The connection came back (a hub restart): report within `spreadMs` rather than at the next
   * heartbeat, at a random point so a thousand devices do not write in the same millisecond.
   */
  reconnected(spreadMs: number): void {
    this.policy.reset();
    setTimeout(() => this.beat(), Math.floor(Math.random() * spreadMs)).unref();
  }

  private beat(): void {
    this.report("online").catch(this.onError);
  }

  private async report(state: DeviceStatus["state"]): Promise<void> {
    const f = this.profile.facts;
    const now = Date.now();
    const status: DeviceStatus = {
      id: this.id,
      at: now,
      heartbeatMs: this.shared.heartbeatMs,
      startedAt: this.startedAt,
      state,
      groups: this.groups,
      agent: { version: this.shared.version },
      natsServer: {},
      facts: this.profile.statusFacts,
      up: { messages: f.up.messages ?? 0, bytes: f.up.bytes ?? 0, firstSeq: 1, lastSeq: f.up.messages ?? 0, pending: 0, discarded: 0 },
      mcus: this.profile.mcus.map((m) => ({ ...m, lastSeen: now })),
    };
    const sig = signature(status);
    const t = performance.now();
    const beat = this.shared.beat;
    if (beat && state === "online" && !this.policy.full(sig, t)) {
      await beat.put(this.id, JSON.stringify(beatOf(status)));
      return;
    }
    await this.shared.status.put(this.id, JSON.stringify(status));
    this.policy.wroteFull(sig, t);
  }
}
