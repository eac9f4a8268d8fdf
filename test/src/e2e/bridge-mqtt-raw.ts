import { connect } from "node:net";
import mqttPacket from "mqtt-packet";
import type { Packet } from "mqtt-packet";

/** A raw MQTT exchange for protocol tests: writes bytes, collects parsed replies, reports who closed. */
export interface RawResult {
  received: Packet[];
  /** The server closed the connection (we never end it first unless `end` was asked). */
  closedByServer: boolean;
}

export function generate(p: Packet, version: 4 | 5 = 4): Buffer {
  return mqttPacket.generate(p, { protocolVersion: version });
}

export function connectPacket(clientId: string, version: 4 | 5 = 4, extra: Partial<Packet & { cmd: "connect" }> = {}): Buffer {
  return generate({ cmd: "connect", clientId, protocolVersion: version, protocolId: "MQTT", clean: true, keepalive: 30, ...extra } as Packet, version);
}

export function publishPacket(topic: string, payload: string, version: 4 | 5 = 4, qos: 0 | 1 | 2 = 1, messageId = 1): Buffer {
  return generate({ cmd: "publish", topic, payload: Buffer.from(payload), qos, dup: false, retain: false, ...(qos ? { messageId } : {}) } as Packet, version);
}

/**
 * Sends `chunks` (each written separately), then waits until the server closes or `waitMs` passes
 * (then we end). With `end: true` we half-close right after writing (EOF mid-packet tests).
 */
export function rawExchange(port: number, chunks: Buffer[], opts: { version?: 4 | 5; waitMs?: number; end?: boolean } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const parser = mqttPacket.parser({ protocolVersion: opts.version ?? 4 });
    const received: Packet[] = [];
    let weClosed = false;
    parser.on("packet", (p: Packet) => received.push(p));
    parser.on("error", () => {});
    socket.on("data", (d: Buffer) => parser.parse(d));
    socket.on("error", () => {});
    const timer = setTimeout(() => {
      weClosed = true;
      socket.destroy();
    }, opts.waitMs ?? 3_000);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ received, closedByServer: !weClosed });
    });
    socket.on("connect", () => {
      for (const c of chunks) socket.write(c);
      if (opts.end) socket.end();
    });
  });
}
