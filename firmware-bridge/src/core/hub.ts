import type { NatsConnection, Msg, Subscription } from "@nats-io/nats-core";
import {
  MCU_COMMAND_ID_HEADER,
  Subjects,
  checkId,
  checkTokenPath,
  errorMessage,
  isValidId,
  type McuAckEvent,
  type McuCommandReply,
  type McuOfflineEvent,
  type McuOnlineEvent,
} from "@canopy/protocol";
import type { Counters } from "../counters.js";
import { FrameError } from "../errors.js";
import type { Logger } from "../log.js";
import type { DedupKey, UpPublisher } from "../nats/publisher.js";
import type { McuIdentity, McuRegistry } from "../registry/registry.js";
import { PendingCommands, type PendingCommand } from "./commands.js";

/** What a link (a serial port, an MQTT connection) offers the hub for one attached MCU. */
export interface McuLink {
  readonly name: string;
  /** Writes the command to the MCU; rejects when the link cannot take it. */
  sendCommand(cmd: { linkId: number; name: string; args: Uint8Array }): Promise<void>;
}

/** Event names the bridge itself publishes under `up.<dev>.evt.mcu.<mcu>.`: MCUs may not forge them. */
const RESERVED_EVENTS = new Set(["online", "offline", "ack"]);

const enc = new TextEncoder();
const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

export interface HubOptions {
  device: string;
  publisher: UpPublisher;
  registry: McuRegistry;
  counters: Counters;
  log: Logger;
  commandTimeoutMs: number;
}

/**
 * Where every link meets NATS: maps MCU traffic to `up.<dev>.…` subjects, keeps the registry and the
 * online/offline events, and routes `cmd.<dev>.mcu.<mcu>.<name>` to whichever link the MCU is on.
 */
export class McuHub {
  private readonly sessions = new Map<string, McuSession>();
  private readonly pending = new Map<string, PendingCommands>();
  private sub: Subscription | undefined;
  private cmdCounter = 0;

  constructor(readonly o: HubOptions) {}

  /** An MCU identified itself on `link`. A newer link for the same id replaces the older one. */
  attach(who: McuIdentity, link: McuLink): McuSession {
    checkId(who.id, "mcu id");
    const session = new McuSession(this, who.id, link);
    this.sessions.set(who.id, session);
    void this.o.registry.online(who).then(() => {
      const ev: McuOnlineEvent = { mcu: who.id, at: Date.now(), board: who.board, firmware: who.firmware, link: who.link };
      this.fire(Subjects.mcuEvent(this.o.device, who.id, "online"), json(ev));
    });
    this.o.log.info({ mcu: who.id, board: who.board, firmware: who.firmware, link: who.link }, "mcu online");
    return session;
  }

  isCurrent(s: McuSession): boolean {
    return this.sessions.get(s.id) === s;
  }

  detach(s: McuSession, reason: string): void {
    if (!this.isCurrent(s)) return;
    this.sessions.delete(s.id);
    void this.o.registry.offline(s.id).then(() => {
      const ev: McuOfflineEvent = { mcu: s.id, at: Date.now(), link: s.link.name, reason };
      this.fire(Subjects.mcuEvent(this.o.device, s.id, "offline"), json(ev));
    });
    this.o.log.info({ mcu: s.id, reason, link: s.link.name }, "mcu offline");
  }

  /** Subscribes to `cmd.<dev>.mcu.*.*` on the leaf (core NATS: the agent forwards commands there). */
  listen(nc: NatsConnection): void {
    this.sub = nc.subscribe(`cmd.${this.o.device}.mcu.*.*`, {
      callback: (err, msg) => {
        if (!err) this.onCommand(msg);
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
    for (const p of this.pending.values()) p.clear();
  }

  pendingFor(mcu: string): PendingCommands {
    let p = this.pending.get(mcu);
    if (!p) this.pending.set(mcu, (p = new PendingCommands()));
    return p;
  }

  ackEvent(mcu: string, cmd: Pick<PendingCommand, "id" | "name">, status: McuAckEvent["status"], detail: string): Promise<unknown> {
    const ev: McuAckEvent = { mcu, id: cmd.id, name: cmd.name, status, detail, at: Date.now() };
    return this.o.publisher.publish(Subjects.mcuEvent(this.o.device, mcu, `ack.${cmd.name}`), json(ev));
  }

  /** Publishes without a caller waiting; the publisher retries until the bridge stops. */
  fire(subject: string, data: Uint8Array): void {
    this.o.publisher.publish(subject, data).catch((err) => this.o.log.debug({ subject, err: errorMessage(err) }, "event dropped"));
  }

  private onCommand(msg: Msg): void {
    const [, , , mcu, name] = msg.subject.split(".");
    const headerId = msg.headers?.get(MCU_COMMAND_ID_HEADER);
    const id = headerId && isValidId(headerId) ? headerId : `${mcu}-${Date.now().toString(36)}-${++this.cmdCounter}`;
    const reply = (r: McuCommandReply): void => {
      if (msg.reply) msg.respond(json(r));
    };
    if (!isValidId(mcu) || !isValidId(name)) {
      this.o.counters.inc("cmd.invalid");
      reply({ id, delivered: false, error: "invalid mcu id or command name" });
      return;
    }
    const session = this.sessions.get(mcu);
    const undeliverable = (why: string): void => {
      this.o.counters.inc("cmd.undeliverable");
      reply({ id, delivered: false, error: why });
      this.ackEvent(mcu, { id, name }, "undeliverable", why).catch(() => {});
    };
    if (!session) return undeliverable(`mcu ${mcu} is offline`);
    const pending = this.pendingFor(mcu);
    const p = pending.add(id, name, this.o.commandTimeoutMs, (t) => {
      this.o.counters.inc("cmd.timeout");
      this.ackEvent(mcu, t, "timeout", `no ack within ${this.o.commandTimeoutMs} ms`).catch(() => {});
    });
    if (!p) return undeliverable("too many commands in flight");
    session.link.sendCommand({ linkId: p.linkId, name, args: msg.data }).then(
      () => {
        this.o.counters.inc("cmd.sent");
        reply({ id, delivered: true });
      },
      (err: unknown) => {
        pending.takeByLinkId(p.linkId);
        undeliverable(`write failed: ${errorMessage(err)}`);
      },
    );
  }
}

/** One MCU on one link. Everything it publishes resolves only after the UP stream acked it. */
export class McuSession {
  constructor(private readonly hub: McuHub, readonly id: string, readonly link: McuLink) {}

  get active(): boolean {
    return this.hub.isCurrent(this);
  }

  telemetry(metric: string, payload: Uint8Array, dedup?: DedupKey): Promise<unknown> {
    const subject = Subjects.mcuTelemetry(this.hub.o.device, this.id, checkTokenPath(metric, "metric"));
    this.hub.o.registry.seen(this.id);
    return this.hub.o.publisher.publish(subject, payload, dedup);
  }

  event(name: string, payload: Uint8Array, dedup?: DedupKey): Promise<unknown> {
    checkTokenPath(name, "subject suffix");
    if (RESERVED_EVENTS.has(name.split(".")[0] ?? "")) {
      throw new FrameError("reserved_event", `event name ${name} is reserved for the bridge`);
    }
    this.hub.o.registry.seen(this.id);
    return this.hub.o.publisher.publish(Subjects.mcuEvent(this.hub.o.device, this.id, name), payload, dedup);
  }

  /** The MCU acked a command: by link id (serial, MQTT 5 correlation data) or by name (MQTT 3.1.1). */
  commandAck(match: { linkId: number } | { name: string }, ok: boolean, detail: string): Promise<unknown> {
    const pending = this.hub.pendingFor(this.id);
    const p = "linkId" in match ? pending.takeByLinkId(match.linkId) : pending.takeOldestByName(match.name);
    this.hub.o.registry.seen(this.id);
    if (!p) {
      this.hub.o.counters.inc("cmd.ack_unmatched");
      return Promise.resolve();
    }
    this.hub.o.counters.inc("cmd.acked");
    return this.hub.ackEvent(this.id, p, ok ? "ok" : "error", detail);
  }

  detach(reason: string): void {
    this.hub.detach(this, reason);
  }
}
