import type { IPublishPacket, Packet } from "mqtt-packet";
import { CanopyError, ErrorCode, errorMessage } from "@canopy/protocol";
import type { McuSession } from "../core/hub.js";
import { FrameError, MqttProtocolError } from "../errors.js";
import { markAcked } from "../registry/store.js";
import { applyRouted } from "./apply.js";
import type { ConnectionContext } from "./connection.js";
import { InflightQueue } from "./inflight.js";
import { mqttDedupKey, UsedPacketIds } from "./packet-ids.js";
import type { ProfileName, Routed } from "./profiles/types.js";
import { Reason } from "./reason.js";

/** What the intake needs from its connection. */
export interface IntakeHost {
  readonly clientId: string;
  readonly version: 4 | 5;
  readonly isOpen: boolean;
  readonly session: McuSession;
  rehello(board: string, firmware: string): void;
  write(p: Packet): void;
  pause(): void;
  resume(): void;
  fail(reason: string): void;
}

/**
 * A connection's incoming PUBLISHes: routed by the profiles, stored, PUBACKed in arrival order once
 * stored; reading pauses above the per-connection and listener-wide byte caps. Throws
 * `MqttProtocolError` for input that closes the connection.
 */
export class PublishIntake {
  /** The profile this MCU last published under: commands are encoded in it first. */
  profile: ProfileName | undefined;
  private readonly inflight: InflightQueue;
  private readonly usedIds = new UsedPacketIds();
  private paused = false;

  constructor(private readonly ctx: ConnectionContext, private readonly host: IntakeHost) {
    this.inflight = new InflightQueue(ctx.budget);
  }

  onPublish(p: IPublishPacket): void {
    if (p.qos === 2) throw new MqttProtocolError("qos2", "QoS 2 is not supported (maximum QoS 1)", Reason.QosNotSupported);
    if (this.host.version === 5 && p.properties?.topicAlias !== undefined) {
      throw new MqttProtocolError("protocol_error", "topic aliases are not supported", Reason.TopicAliasInvalid);
    }
    if (p.qos === 1 && this.inflight.qos1 >= this.ctx.limits.receiveMaximum && this.host.version === 5) {
      throw new MqttProtocolError("receive_maximum", "more QoS 1 publishes in flight than receive maximum", Reason.ReceiveMaximumExceeded);
    }
    const payload = Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload);
    const entry = this.inflight.add(p.qos === 1 ? p.messageId : undefined, payload.length + p.topic.length + 64);
    let work: Promise<unknown>;
    try {
      const routed = this.ctx.router.route(p.topic, payload, this.host.clientId, p.properties?.correlationData);
      // Retained publishes only where a firmware sends them (discovery, LWT, status): never stored as retained.
      if (p.retain && routed.profile === "canopy" && !p.topic.startsWith("homeassistant/")) {
        throw new MqttProtocolError("retain", "retain is not supported on Canopy topics", Reason.RetainNotSupported);
      }
      work = this.route(routed, p);
    } catch (err) {
      const denied = err instanceof MqttProtocolError && err.reason === "topic_denied";
      const reserved = err instanceof FrameError;
      if (this.host.version === 5 && (denied || reserved)) {
        // MQTT 5 can refuse one publish and keep the connection: PUBACK with "not authorized".
        this.ctx.counters.inc(`mqtt.${denied ? "topic_denied" : "reserved_event"}`);
        this.ctx.counters.inc("mqtt.refused_publishes");
        this.flushAcks(this.inflight.settle(entry, Reason.NotAuthorized));
        return;
      }
      throw reserved ? new MqttProtocolError("topic_denied", errorMessage(err), Reason.NotAuthorized) : err;
    }
    if ((this.inflight.bytes > this.ctx.limits.maxInflightBytes || this.ctx.budget.exhausted) && !this.paused) {
      this.paused = true;
      this.host.pause();
    }
    work.then(
      () => this.flushAcks(this.inflight.settle(entry)),
      (err: unknown) => {
        this.ctx.log.debug({ client: this.host.clientId, err: errorMessage(err) }, "publish not stored");
        if (this.host.version === 5 && err instanceof CanopyError && err.code === ErrorCode.DiskFull) {
          // MQTT 5 refuses one publish and keeps the connection: PUBACK "quota exceeded", nothing stored.
          this.ctx.counters.inc("mqtt.disk_full");
          this.ctx.counters.inc("mqtt.refused_publishes");
          this.flushAcks(this.inflight.settle(entry, Reason.QuotaExceeded));
          return;
        }
        this.host.fail(err instanceof CanopyError && err.code === ErrorCode.DiskFull ? "disk full" : "bridge stopping");
      },
    );
  }

  private route(r: Routed, p: IPublishPacket): Promise<unknown> {
    const id = p.messageId ?? 0;
    const dedup = p.qos === 1 ? { base: mqttDedupKey(this.host.clientId, id), retransmit: p.dup, maybeResend: this.usedIds.first(id) } : undefined;
    if (r.skipped > 0) this.ctx.counters.inc(`mqtt.${r.profile}.skipped_fields`, r.skipped);
    this.profile = r.outputs.length > 0 && !p.topic.startsWith("homeassistant/") ? r.profile : this.profile;
    const work = applyRouted(r, this.host.session, this.ctx.hub, (b, f) => this.host.rehello(b, f), dedup);
    this.ctx.counters.inc(`mqtt.${r.profile}.publishes`); // after applyRouted: a refused publish is counted once, as refused
    return work;
  }

  private flushAcks(acks: Array<{ messageId: number; reason: number }>): void {
    if (!this.host.isOpen) return;
    for (const a of acks) {
      this.host.write({ cmd: "puback", messageId: a.messageId, ...(this.host.version === 5 && a.reason ? { reasonCode: a.reason } : {}) });
      if (!a.reason) markAcked(this.ctx.dedup, mqttDedupKey(this.host.clientId, a.messageId));
    }
    this.maybeResume();
  }

  private cancelBudgetWait: (() => void) | undefined;

  private maybeResume(): void {
    if (!this.paused || !this.host.isOpen || this.inflight.bytes > this.ctx.limits.maxInflightBytes / 2) return;
    if (this.ctx.budget.exhausted) {
      this.cancelBudgetWait ??= this.ctx.budget.waitForRoom(() => {
        this.cancelBudgetWait = undefined;
        this.maybeResume();
      });
      return;
    }
    this.paused = false;
    this.host.resume();
  }

  /** The connection closed: stop waiting for budget room. */
  stop(): void {
    this.cancelBudgetWait?.();
  }
}
