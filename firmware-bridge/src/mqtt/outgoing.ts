import type { Packet } from "mqtt-packet";

interface Waiting {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Commands published to one MQTT client. QoS 1 commands count as delivered when the client PUBACKs;
 * MQTT 5 clients also get the command's link id as correlation data and `<mcu>/ack/<name>` as the
 * response topic, so their ack can be matched exactly.
 */
export class OutgoingCommands {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly write: (p: Packet) => void, private readonly pubackTimeoutMs = 10_000) {}

  send(clientId: string, cmd: { linkId: number; name: string; args: Uint8Array }, qos: 0 | 1, version: 4 | 5): Promise<void> {
    const topic = `${clientId}/cmd/${cmd.name}`;
    const properties =
      version === 5
        ? { properties: { correlationData: Buffer.from([cmd.linkId >> 8, cmd.linkId & 0xff]), responseTopic: `${clientId}/ack/${cmd.name}` } }
        : {};
    if (qos === 0) {
      this.write({ cmd: "publish", topic, payload: Buffer.from(cmd.args), qos: 0, dup: false, retain: false, ...properties });
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
      this.write({ cmd: "publish", topic, payload: Buffer.from(cmd.args), qos: 1, messageId, dup: false, retain: false, ...properties });
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
