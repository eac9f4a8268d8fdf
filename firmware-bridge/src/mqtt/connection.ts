import type { Socket } from "node:net";
import type { ISubscribePacket, IUnsubscribePacket, Packet } from "mqtt-packet";
import { errorMessage } from "@canopy/protocol";
import type { Counters } from "../counters.js";
import type { McuHub, McuLink, McuSession } from "../core/hub.js";
import { MqttProtocolError } from "../errors.js";
import type { Logger } from "../log.js";
import { acceptConnect, connackAccepted, type AcceptedConnect } from "./connect.js";
import { PacketFramer } from "./framer.js";
import { PublishIntake } from "./intake.js";
import { applyRouted } from "./apply.js";
import { Reason, v4ConnackCode } from "./reason.js";
import { generate, StrictParser } from "./strict-parser.js";
import { OutgoingCommands } from "./outgoing.js";
import type { ProfileRouter } from "./profiles/router.js";
import { Subscriptions } from "./subscriptions.js";
import { resumeSession, saveSession, type StoredSession } from "./sessions.js";
import type { AuthPolicy } from "./auth.js";
import type { ByteBudget } from "./budget.js";
import type { DedupEntry } from "../registry/store.js";
import type { Database } from "lmdb";

export interface MqttLimits {
  maxPacketBytes: number;
  maxInflightBytes: number;
  receiveMaximum: number;
  connectTimeoutMs: number;
}

export interface ConnectionContext {
  hub: McuHub;
  counters: Counters;
  log: Logger;
  limits: MqttLimits;
  auth: AuthPolicy;
  router: ProfileRouter;
  sessions: Database<StoredSession, string>;
  /** Received-but-unstored bytes of every connection together. */
  budget: ByteBudget;
  /** The bridge's dedup index: PUBACKs are recorded there (see UsedPacketIds). */
  dedup: Database<DedupEntry, string>;
  /** Registers the client id; an older connection with the same id is closed (session takeover). */
  claim(conn: MqttConnection): void;
  release(conn: MqttConnection): void;
}

type State = "new" | "connecting" | "open" | "closed";

/**
 * One MQTT client = one MCU. Bad input closes the connection as the spec says, is counted once under
 * `mqtt.<reason>`, and never throws out of here: the listener process survives any byte sequence.
 */
export class MqttConnection implements McuLink {
  readonly name: string;
  clientId = "";
  private state: State = "new";
  private version: 4 | 5 = 4;
  private readonly framer: PacketFramer;
  private readonly parser = new StrictParser();
  private readonly intake: PublishIntake;
  private readonly subs: Subscriptions;
  private readonly outgoing: OutgoingCommands;
  private held: Buffer[] = [];
  private session: McuSession | undefined;
  private will: AcceptedConnect["will"];
  private sendWill = true;
  private keepaliveMs = 0;
  private lastRx = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private endedEarly = false;

  constructor(private readonly socket: Socket, private readonly ctx: ConnectionContext) {
    this.name = `mqtt:${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    this.framer = new PacketFramer(ctx.limits.maxPacketBytes);
    const conn = this;
    this.intake = new PublishIntake(ctx, {
      get clientId() { return conn.clientId; },
      get version() { return conn.version; },
      get isOpen() { return conn.state === "open"; },
      get session() { return conn.session as McuSession; },
      rehello: (board, firmware) => {
        this.session = ctx.hub.attach({ id: this.clientId, board, firmware, link: this.name }, this);
      },
      write: (p) => this.write(p),
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      fail: (reason) => this.close(reason),
    });
    this.subs = new Subscriptions(ctx.router, ctx.counters);
    this.outgoing = new OutgoingCommands((p) => this.write(p));
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => {
      // While CONNECT is being checked, packets are held: judge them first, then the EOF.
      if (this.state === "connecting") this.endedEarly = true;
      else this.onEnd();
    });
    socket.on("error", (err) => {
      ctx.counters.inc("mqtt.socket_errors");
      this.close(`socket error: ${err.message}`);
    });
    socket.on("close", () => this.close("connection lost"));
    this.timer = setTimeout(() => this.reject(new MqttProtocolError("connect_timeout", "no CONNECT in time", Reason.MaximumConnectTime)), ctx.limits.connectTimeoutMs);
  }

  private onEnd(): void {
    if (this.framer.buffered > 0) this.reject(new MqttProtocolError("truncated", "connection ended inside a packet", Reason.MalformedPacket));
    else this.close("connection lost");
  }

  get framerHighWater(): number {
    return this.framer.highWater;
  }

  private onData(chunk: Buffer): void {
    if (this.state === "closed") return;
    this.lastRx = Date.now();
    try {
      for (const pkt of this.framer.push(chunk)) {
        if (this.state === "connecting") this.held.push(pkt);
        else this.onPacket(pkt);
        if ((this.state as State) === "closed") return;
      }
    } catch (err) {
      this.reject(err);
    }
  }

  private onPacket(raw: Buffer): void {
    const pkt = this.parser.parse(raw);
    if (this.state === "new") {
      if (pkt.cmd !== "connect") throw new MqttProtocolError("not_connect_first", `first packet is ${pkt.cmd}`, Reason.ProtocolError);
      this.state = "connecting";
      this.socket.pause();
      acceptConnect(pkt, this.ctx.auth, this.ctx.router)
        .then((a) => {
          if (!this.ctx.hub.o.registry.admit(a.clientId)) {
            throw new MqttProtocolError("mcu_cap", `no room for MCU ${a.clientId}: every remembered MCU is online`, Reason.QuotaExceeded);
          }
          return a;
        })
        .then(
        (a) => this.opened(a),
        (err: unknown) => this.refuse(err, pkt.protocolVersion === 5 ? 5 : 4),
      );
      return;
    }
    switch (pkt.cmd) {
      case "connect":
        throw new MqttProtocolError("second_connect", "second CONNECT on one connection", Reason.ProtocolError);
      case "publish":
        return this.intake.onPublish(pkt);
      case "puback":
        return this.outgoing.acked(pkt.messageId ?? -1);
      case "subscribe":
        return this.onSubscribe(pkt);
      case "unsubscribe":
        return this.onUnsubscribe(pkt);
      case "pingreq":
        return this.write({ cmd: "pingresp" });
      case "disconnect":
        this.sendWill = this.version === 5 && pkt.reasonCode === 0x04;
        return this.close("disconnect");
      default:
        throw new MqttProtocolError("protocol_error", `unexpected ${pkt.cmd} from a client`, Reason.ProtocolError);
    }
  }

  private opened(a: AcceptedConnect): void {
    if (this.state === "closed") {
      // Closed while its CONNECT was checked: it was admitted but never comes online. Without this its
      // place stayed taken for good (each one shrank the registry's room by one).
      this.ctx.hub.o.registry.abandon(a.clientId);
      return;
    }
    this.state = "open";
    this.version = a.version;
    this.clientId = a.clientId;
    this.will = a.will;
    this.keepaliveMs = a.keepaliveS * 1000;
    clearTimeout(this.timer);
    this.armKeepalive();
    this.persistMs = a.session.persistMs;
    const resumed = resumeSession(this.ctx.sessions, a.clientId, a.session);
    if (resumed) this.subs.restore(resumed.subs);
    else if (this.persistMs > 0) saveSession(this.ctx.sessions, a.clientId, [], this.persistMs);
    this.write(connackAccepted(a.version, this.ctx.limits, resumed !== undefined));
    this.ctx.claim(this);
    this.session = this.ctx.hub.attach({ id: a.clientId, board: a.board, firmware: a.firmware, link: this.name }, this);
    const held = this.held;
    this.held = [];
    try {
      for (const raw of held) {
        this.onPacket(raw);
        if ((this.state as State) !== "open") return;
      }
    } catch (err) {
      this.reject(err);
      return;
    }
    if (this.endedEarly) this.onEnd();
    else this.socket.resume();
  }

  private refuse(err: unknown, version: 4 | 5): void {
    if (this.state === "closed") return;
    this.version = version;
    const code = err instanceof MqttProtocolError ? err.reasonCode : Reason.UnspecifiedError;
    // A will topic outside the map has no 3.1.1 return code: close without CONNACK [MQTT-3.1.4-1].
    if (version === 5) this.write({ cmd: "connack", sessionPresent: false, reasonCode: code });
    else if (!(err instanceof MqttProtocolError && err.reason === "topic_denied")) {
      this.write({ cmd: "connack", sessionPresent: false, returnCode: v4ConnackCode(code) });
    }
    this.state = "new"; // no DISCONNECT after a refusing CONNACK
    this.reject(err);
  }

  private onSubscribe(p: ISubscribePacket): void {
    this.write({ cmd: "suback", messageId: p.messageId ?? 0, granted: this.subs.subscribe(p, this.clientId, this.version) });
    if (this.persistMs > 0) saveSession(this.ctx.sessions, this.clientId, this.subs.entries(), this.persistMs);
  }

  /** > 0: a persistent session (its subscriptions are kept in LMDB for this long after the last contact). */
  private persistMs = 0;

  private onUnsubscribe(p: IUnsubscribePacket): void {
    const codes = this.subs.unsubscribe(p.unsubscriptions);
    if (this.persistMs > 0) saveSession(this.ctx.sessions, this.clientId, this.subs.entries(), this.persistMs);
    this.write({ cmd: "unsuback", messageId: p.messageId ?? 0, ...(this.version === 5 ? { granted: codes } : {}) } as Packet);
  }

  /** Encodes the command in the MCU's profile (the one it last spoke first) for a topic it subscribed to. */
  sendCommand(cmd: { linkId: number; name: string; args: Uint8Array }): Promise<void> {
    if (this.state !== "open") return Promise.reject(new Error("connection closed"));
    const e = this.ctx.router.encode(this.clientId, cmd, this.subs.filters, this.intake.profile);
    if (!e) return Promise.reject(new Error(`${this.clientId} subscribed to no topic that carries command ${cmd.name} (profiles ${this.ctx.router.names})`));
    // MQTT 5 Canopy MCUs echo the link id as correlation data; Shelly echoes it as the JSON-RPC id.
    const props = this.version === 5 && e.profile === "canopy"
      ? { correlationData: Buffer.from([cmd.linkId >> 8, cmd.linkId & 0xff]), responseTopic: `${this.clientId}/ack/${cmd.name}` }
      : undefined;
    return this.outgoing.send(this.clientId, e.topic, e.payload, this.subs.qos(e.filter), props);
  }

  private armKeepalive(): void {
    if (this.keepaliveMs <= 0) return;
    // 1.5 × keep-alive without any packet closes the connection [MQTT-3.1.2-24].
    const due = this.lastRx + this.keepaliveMs * 1.5 - Date.now();
    this.timer = setTimeout(() => {
      if (Date.now() - this.lastRx >= this.keepaliveMs * 1.5) {
        this.reject(new MqttProtocolError("keepalive_timeout", "keep-alive expired", Reason.KeepAliveTimeout));
      } else this.armKeepalive();
    }, Math.max(due, 10));
  }

  private corked = false;

  /** Packets written in one tick leave in one syscall (PUBACKs come in bursts as the stream acks). */
  private write(p: Packet): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(generate(p, this.version));
  }

  /** Closes after a protocol violation: counted once, MQTT 5 clients get a DISCONNECT with the reason. */
  private reject(err: unknown): void {
    if (this.state === "closed") return;
    const e = err instanceof MqttProtocolError ? err : new MqttProtocolError("internal_error", errorMessage(err), Reason.UnspecifiedError, { cause: err });
    this.ctx.counters.inc(`mqtt.${e.reason}`);
    this.ctx.counters.inc("mqtt.rejected");
    this.ctx.log.debug({ client: this.clientId || undefined, peer: this.name, reason: e.reason, err: e.message }, "mqtt connection refused");
    if (this.state === "open" && this.version === 5) this.write({ cmd: "disconnect", reasonCode: e.reasonCode });
    this.close(e.reason === "keepalive_timeout" ? "keepalive" : e.reason);
  }

  /** Idempotent. Publishes the will unless the client said a clean goodbye, then marks the MCU offline. */
  close(reason: string): void {
    if (this.state === "closed") return;
    const wasOpen = this.state === "open";
    this.state = "closed";
    clearTimeout(this.timer);
    this.intake.stop();
    this.outgoing.failAll();
    this.socket.end();
    // Keep reading (onData drops it now) what the client still sends: a socket closed with unread
    // input makes the kernel send a reset, and a client that had not read our refusing CONNACK yet
    // loses it (seen under load: 1,674 of 10,000 refused clients got no CONNACK).
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), 500).unref();
    this.ctx.release(this);
    if (wasOpen && this.persistMs > 0) saveSession(this.ctx.sessions, this.clientId, this.subs.entries(), this.persistMs);
    const s = this.session;
    if (!wasOpen || !s?.active) return;
    const will = reason !== "disconnect" || this.sendWill ? this.will : undefined;
    if (will) {
      try {
        applyRouted(will, s, this.ctx.hub, () => {}).catch(() => {});
      } catch (err) {
        this.ctx.log.debug({ err: errorMessage(err) }, "will not published");
      }
    }
    s.detach(will ? "will" : reason);
  }
}
