import type { NatsConnection, Msg, Subscription } from "@nats-io/nats-core";
import {
  McuCommandRequest,
  Subjects,
  checkId,
  checkTokenPath,
  decode,
  errorMessage,
  isValidId,
  type McuAckEvent,
  type McuCommandResult,
  type McuOfflineEvent,
  type McuOnlineEvent,
} from "@canopy/protocol";
import type { Counters } from "../counters.js";
import { FrameError } from "../errors.js";
import type { Logger } from "../log.js";
import type { DedupKey, UpPublisher } from "../nats/publisher.js";
import type { McuIdentity, McuRegistry } from "../registry/registry.js";
import { HeldCommands, PendingCommands, type PendingCommand } from "./commands.js";

/** What a link (a serial port, an MQTT connection) offers the hub for one attached MCU. */
export interface McuLink {
  readonly name: string;
  /** Writes the command to the MCU; rejects when the link cannot take it. */
  sendCommand(cmd: { linkId: number; name: string; args: Uint8Array }): Promise<void>;
  /** Serial links only: close the port for a flasher and reopen it on `resume()`. */
  suspend?(): Promise<{ path: string; baudRate: number; resume: () => void }>;
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

/** After an MCU attaches, a write may fail until it subscribed (MQTT): held commands retry this long. */
const SETTLE_MS = 5_000;

/**
 * Where every link meets NATS: maps MCU traffic to `up.<dev>.…` subjects, keeps the registry and the
 * online/offline events, and routes the agent's command requests (`local.<dev>.mcu.<mcu>.cmd.<name>`)
 * to whichever link the MCU is on; the MCU's ack is the reply. Nothing here listens on `cmd.>`: a
 * core publish there is not a journalled command and must never reach an MCU.
 */
export class McuHub {
  private readonly sessions = new Map<string, McuSession>();
  private readonly pending = new Map<string, PendingCommands>();
  private readonly held = new HeldCommands();
  private readonly attachedAt = new Map<string, number>();
  private sub: Subscription | undefined;

  constructor(readonly o: HubOptions) {}

  /** An MCU identified itself on `link`. A newer link for the same id replaces the older one. */
  attach(who: McuIdentity, link: McuLink): McuSession {
    checkId(who.id, "mcu id");
    const session = new McuSession(this, who.id, link);
    this.sessions.set(who.id, session);
    this.attachedAt.set(who.id, Date.now());
    void this.o.registry.online(who).then(
      () => {
        const ev: McuOnlineEvent = { mcu: who.id, at: Date.now(), board: who.board, firmware: who.firmware, link: who.link };
        this.fire(Subjects.mcuEvent(this.o.device, who.id, "online"), json(ev));
      },
      (err: unknown) => this.o.log.warn({ mcu: who.id, err: errorMessage(err) }, "registry write failed (disk full?): the MCU is online but not recorded"),
    );
    this.o.log.info({ mcu: who.id, board: who.board, firmware: who.firmware, link: who.link }, "mcu online");
    this.held.release(who.id);
    return session;
  }

  session(mcu: string): McuSession | undefined {
    return this.sessions.get(mcu);
  }

  isCurrent(s: McuSession): boolean {
    return this.sessions.get(s.id) === s;
  }

  detach(s: McuSession, reason: string): void {
    if (!this.isCurrent(s)) return;
    this.sessions.delete(s.id);
    void this.o.registry.offline(s.id).then(
      () => {
        const ev: McuOfflineEvent = { mcu: s.id, at: Date.now(), link: s.link.name, reason };
        this.fire(Subjects.mcuEvent(this.o.device, s.id, "offline"), json(ev));
      },
      (err: unknown) => this.o.log.warn({ mcu: s.id, err: errorMessage(err) }, "registry write failed (disk full?): the MCU is offline but not recorded"),
    );
    this.o.log.info({ mcu: s.id, reason, link: s.link.name }, "mcu offline");
  }

  /** Subscribes to the agent's command requests on the leaf (`local.>`: never crosses the link). */
  listen(nc: NatsConnection): void {
    this.sub = nc.subscribe(Subjects.localMcuCommands(this.o.device), {
      callback: (err, msg) => {
        if (!err) this.onCommand(msg);
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.held.clear();
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
    // local.<dev>.mcu.<mcu>.cmd.<name>
    const [, , , mcu = "", , name = ""] = msg.subject.split(".");
    if (!msg.reply) return this.o.counters.inc("cmd.no_reply_subject");
    let req: McuCommandRequest;
    try {
      req = decode(McuCommandRequest, msg.data, 64 * 1024);
    } catch (err) {
      this.o.counters.inc("cmd.invalid");
      msg.respond(json({ id: "", status: "undeliverable", detail: `bad command request: ${errorMessage(err)}` } satisfies McuCommandResult));
      return;
    }
    let answered = false;
    const answer = (status: McuCommandResult["status"], detail: string): void => {
      if (answered) return;
      answered = true;
      msg.respond(json({ id: req.id, status, detail } satisfies McuCommandResult));
    };
    if (!isValidId(mcu) || !isValidId(name)) return answer("undeliverable", "invalid mcu id or command name");
    if (this.sessions.has(mcu)) return this.deliver(mcu, name, req, answer, Date.now() + req.waitMs);
    if (!this.o.registry.get(mcu)) {
      this.o.counters.inc("cmd.unknown_mcu");
      return answer("unknown", `no MCU ${mcu} has ever connected to this device's bridge`);
    }
    const offline = (): void => answer("offline", `mcu ${mcu} is offline`);
    if (req.waitMs === 0) return offline();
    const until = Date.now() + req.waitMs;
    if (!this.held.hold(mcu, req.waitMs, () => this.deliver(mcu, name, req, answer, until), offline)) {
      answer("undeliverable", `too many commands waiting for ${mcu}`);
    }
  }

  /** Writes the command to the MCU's current link; the MCU's ack (or the ack timeout) answers it. */
  private deliver(mcu: string, name: string, req: McuCommandRequest, answer: (s: McuCommandResult["status"], d: string) => void, until: number): void {
    const session = this.sessions.get(mcu);
    if (!session) return answer("offline", `mcu ${mcu} is offline`);
    const pending = this.pendingFor(mcu);
    const p = pending.add(req.id, name, req.ackTimeoutMs, answer, (t) => {
      this.o.counters.inc("cmd.timeout");
      const detail = `no ack from ${mcu} within ${req.ackTimeoutMs} ms`;
      t.answer("timeout", detail);
      this.ackEvent(mcu, t, "timeout", detail).catch(() => {});
    });
    if (!p) return answer("undeliverable", "too many commands in flight");
    session.link.sendCommand({ linkId: p.linkId, name, args: enc.encode(req.payload) }).then(
      () => this.o.counters.inc("cmd.sent"),
      (err: unknown) => {
        pending.takeByLinkId(p.linkId);
        // Just attached (an MQTT client subscribes after CONNACK): try again shortly while time is left.
        const fresh = Date.now() - (this.attachedAt.get(mcu) ?? 0) < SETTLE_MS;
        if (fresh && Date.now() + 250 < until) {
          setTimeout(() => this.deliver(mcu, name, req, answer, until), 250).unref();
          return;
        }
        this.o.counters.inc("cmd.undeliverable");
        const why = `write failed: ${errorMessage(err)}`;
        answer("undeliverable", why);
        this.ackEvent(mcu, { id: req.id, name }, "undeliverable", why).catch(() => {});
      },
    );
  }
}

/**
 * Throws what `telemetry()` / `event()` would refuse for this name, without publishing anything: a
 * link can refuse a bad frame before it decides where the frame stands in the MCU's order.
 */
export function checkReadingName(kind: "telemetry" | "event", name: string): void {
  checkTokenPath(name, kind === "telemetry" ? "metric" : "subject suffix");
  if (kind === "event" && RESERVED_EVENTS.has(name.split(".")[0] ?? "")) {
    throw new FrameError("reserved_event", `event name ${name} is reserved for the bridge`);
  }
}

/** One MCU on one link. Everything it publishes resolves only after the UP stream acked it. */
export class McuSession {
  constructor(private readonly hub: McuHub, readonly id: string, readonly link: McuLink) {}

  get active(): boolean {
    return this.hub.isCurrent(this);
  }

  telemetry(metric: string, payload: Uint8Array, dedup?: DedupKey): Promise<unknown> {
    checkReadingName("telemetry", metric);
    const subject = Subjects.mcuTelemetry(this.hub.o.device, this.id, metric);
    this.hub.o.registry.seen(this.id);
    return this.hub.o.publisher.publish(subject, payload, dedup);
  }

  event(name: string, payload: Uint8Array, dedup?: DedupKey): Promise<unknown> {
    checkReadingName("event", name);
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
    p.answer(ok ? "ok" : "error", detail);
    return this.hub.ackEvent(this.id, p, ok ? "ok" : "error", detail);
  }

  detach(reason: string): void {
    this.hub.detach(this, reason);
  }
}
