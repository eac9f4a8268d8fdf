import { MqttProtocolError } from "../errors.js";
import { Reason } from "./reason.js";

/**
 * Cuts the TCP byte stream into whole MQTT packets before mqtt-packet sees them. mqtt-packet buffers
 * without limit; here a packet's size is known from its fixed header and refused (`oversize`) before
 * its body is buffered, so at most one packet (≤ the cap) is ever held per connection.
 */
export class PacketFramer {
  private buf: Buffer = Buffer.alloc(0);
  /** Most bytes ever held: tests assert it stays ≤ cap. */
  highWater = 0;

  constructor(readonly maxPacketBytes: number) {}

  get buffered(): number {
    return this.buf.length;
  }

  /** Returns the complete packets in `chunk` (plus what was held); keeps the partial rest. */
  push(chunk: Buffer): Buffer[] {
    let buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (buf.length < 2) break;
      const type = (buf[0] as number) >> 4;
      if (type === 0) throw new MqttProtocolError("protocol_error", "reserved packet type 0", Reason.MalformedPacket);
      let remaining = 0;
      let mul = 1;
      let i = 1;
      let done = false;
      for (; i <= 4 && i < buf.length; i++) {
        const b = buf[i] as number;
        remaining += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          done = true;
          i++;
          break;
        }
      }
      if (!done) {
        if (i > 4) throw new MqttProtocolError("protocol_error", "remaining length over 4 bytes", Reason.MalformedPacket);
        break;
      }
      const total = i + remaining;
      if (total > this.maxPacketBytes) {
        throw new MqttProtocolError(
          "oversize",
          `packet of ${total} bytes over the ${this.maxPacketBytes}-byte cap`,
          Reason.PacketTooLarge,
        );
      }
      if (buf.length < total) break;
      out.push(buf.subarray(0, total));
      buf = buf.subarray(total);
    }
    // Copy the partial rest so a big socket chunk is not pinned in memory by a small tail.
    this.buf = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    if (this.buf.length > this.highWater) this.highWater = this.buf.length;
    return out;
  }
}
