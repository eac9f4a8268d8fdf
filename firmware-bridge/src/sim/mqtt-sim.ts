import { connect as tcpConnect, type Socket } from "node:net";
import mqtt from "mqtt-packet";
import type { Packet } from "mqtt-packet";
import { Backoff, sleep } from "@canopy/protocol";
import { periodMs, reading, runCommand, type SimOptions } from "./behaviour.js";

export interface MqttSimOptions extends SimOptions {
  host: string;
  port: number;
  version?: 4 | 5;
  username?: string;
  password?: string;
  keepaliveS?: number;
}

/**
 * A Wi-Fi MCU speaking MQTT, written on mqtt-packet directly (as small firmware clients are): CONNECT
 * with a Last Will on `<id>/evt/lwt`, SUBSCRIBE `<id>/cmd/+`, QoS 1 readings on `<id>/tlm/counter`,
 * command acks on `<id>/ack/<name>` (with the command's correlation data under MQTT 5).
 */
export class MqttSim {
  private socket: Socket | undefined;
  private nextId = 1;
  private readonly inflight = new Map<number, Packet>();
  private produced = 0;
  acked = 0;
  commands = 0;

  constructor(private readonly o: MqttSimOptions) {}

  private get version(): 4 | 5 {
    return this.o.version ?? 4;
  }

  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 200, maxMs: 3_000 });
    const done = new AbortController();
    const stop = AbortSignal.any([signal, done.signal]);
    const producer = this.produce(stop, () => done.abort());
    while (!stop.aborted) {
      const closed = await this.session(stop).catch(() => undefined);
      this.socket = undefined;
      if (stop.aborted) break;
      this.o.report?.({ event: "link-lost", reason: closed });
      await sleep(backoff.next(), stop);
    }
    await producer.catch(() => {});
    this.o.report?.({ event: "done", produced: this.produced, acked: this.acked, commands: this.commands });
  }

  private session(signal: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect(this.o.port, this.o.host);
      const parser = mqtt.parser({ protocolVersion: this.version });
      const ping = setInterval(() => this.write({ cmd: "pingreq" }), ((this.o.keepaliveS ?? 30) * 1000) / 2);
      const onAbort = (): void => {
        this.write({ cmd: "disconnect" });
        socket.end();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      socket.on("error", (err) => reject(err));
      socket.on("close", () => {
        clearInterval(ping);
        signal.removeEventListener("abort", onAbort);
        resolve("closed");
      });
      socket.on("data", (d: Buffer) => parser.parse(d));
      parser.on("error", () => socket.destroy());
      parser.on("packet", (p: Packet) => this.onPacket(p));
      socket.on("connect", () => {
        this.socket = socket;
        this.write({
          cmd: "connect",
          clientId: this.o.id,
          protocolVersion: this.version,
          protocolId: "MQTT",
          clean: true,
          keepalive: this.o.keepaliveS ?? 30,
          ...(this.o.username !== undefined ? { username: this.o.username } : {}),
          ...(this.o.password !== undefined ? { password: Buffer.from(this.o.password) } : {}),
          will: { topic: `${this.o.id}/evt/lwt`, payload: Buffer.from("gone"), qos: 1, retain: false },
          ...(this.version === 5
            ? { properties: { userProperties: { board: this.o.board ?? "sim-esp32", firmware: this.o.firmware ?? "1.0.0" } } }
            : {}),
        });
      });
    });
  }

  private write(p: Packet): void {
    if (this.socket && !this.socket.destroyed) this.socket.write(mqtt.generate(p, { protocolVersion: this.version }));
  }

  private onPacket(p: Packet): void {
    if (p.cmd === "connack") {
      if ((p.returnCode ?? p.reasonCode ?? 0) !== 0) {
        this.o.report?.({ event: "refused", code: p.returnCode ?? p.reasonCode });
        this.socket?.destroy();
        return;
      }
      this.write({ cmd: "subscribe", messageId: this.id(), subscriptions: [{ topic: `${this.o.id}/cmd/+`, qos: 1 }] });
      if (this.version === 4) this.write(this.publishPacket(`${this.o.id}/hello`, `${this.o.board ?? "sim-esp32"} ${this.o.firmware ?? "1.0.0"}`, 0));
      for (const q of this.inflight.values()) this.write({ ...q, dup: true } as Packet);
      this.o.report?.({ event: "connected" });
    } else if (p.cmd === "puback") {
      if (this.inflight.delete(p.messageId ?? -1)) this.acked++;
    } else if (p.cmd === "publish") {
      if (p.qos === 1) this.write({ cmd: "puback", messageId: p.messageId ?? 0 });
      const name = p.topic.split("/")[2] ?? "";
      this.commands++;
      const r = runCommand(name, p.payload.toString());
      this.o.report?.({ event: "command", name, ok: r.ok });
      const ack = this.publishPacket(`${this.o.id}/ack/${name}`, `${r.ok ? "ok" : "err"} ${r.detail}`, 1);
      const corr = p.properties?.correlationData;
      if (corr && ack.cmd === "publish") ack.properties = { correlationData: corr };
      this.inflight.set(ack.messageId ?? 0, ack);
      this.write(ack);
    }
  }

  private id(): number {
    let id = this.nextId;
    while (this.inflight.has(id)) id = (id % 0xffff) + 1;
    this.nextId = (id % 0xffff) + 1;
    return id;
  }

  private publishPacket(topic: string, payload: string, qos: 0 | 1): Packet & { cmd: "publish" } {
    return { cmd: "publish", topic, payload: Buffer.from(payload), qos, dup: false, retain: false, ...(qos ? { messageId: this.id() } : {}) };
  }

  private async produce(signal: AbortSignal, finished: () => void): Promise<void> {
    const period = periodMs(this.o.rate);
    const window = this.o.window ?? 20;
    while (!signal.aborted && (this.o.count === undefined || this.produced < this.o.count)) {
      if (!this.socket || this.inflight.size >= window) {
        await sleep(2, signal);
        continue;
      }
      const { metric, value } = reading(++this.produced);
      const p = this.publishPacket(`${this.o.id}/tlm/${metric}`, value, 1);
      this.inflight.set(p.messageId ?? 0, p);
      this.write(p);
      if (period > 0) await sleep(period, signal);
    }
    while (!signal.aborted && this.inflight.size > 0) await sleep(5, signal);
    if (this.o.count !== undefined) finished();
  }
}
