import type { IPublishPacket, Packet } from "mqtt-packet";

interface Waiting {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Commands published to one MQTT client. QoS 1 commands count as delivered when the client PUBACKs;
 * the packet carries whatever the profile put in it (topic, payload, MQTT 5 properties).
 */
export class OutgoingCommands {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly write: (p: Packet) => void, private readonly pubackTimeoutMs = 10_000) {}

  send(clientId: string, topic: string, payload: Buffer, qos: 0 | 1, properties?: IPublishPacket["properties"]): Promise<void> {
    const props = properties ? { properties } : {};
    if (qos === 0) {
      this.write({ cmd: "publish", topic, payload, qos: 0, dup: false, retain: false, ...props });
      return Promise.resolve();
    }
    let messageId = this.nextId;
    while (this.waiting.has(messageId)) messageId = (messageId % 0xffff) + 1;
    this.nextId = (messageId % 0xffff) + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(messageId);
        reject(new Error(`no PUBACK from ${clientId} within ${this.pubackTimeoutMs} ms`));
      }, this.pubackTimeoutMs);
      this.waiting.set(messageId, { resolve, reject, timer });
      this.write({ cmd: "publish", topic, payload, qos: 1, messageId, dup: false, retain: false, ...props });
    });
  }

  acked(messageId: number): void {
    const w = this.waiting.get(messageId);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(messageId);
    w.resolve();
  }

  failAll(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new Error("connection closed"));
    }
    this.waiting.clear();
  }
}
