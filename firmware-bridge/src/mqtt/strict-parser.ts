import mqtt from "mqtt-packet";
import type { Packet, Parser } from "mqtt-packet";
import { MqttProtocolError } from "../errors.js";
import { Reason } from "./reason.js";

/**
 * mqtt-packet decodes strings with `toString("utf8")`, which turns ill-formed UTF-8 into U+FFFD
 * instead of failing. MQTT requires closing the connection on ill-formed UTF-8 [MQTT-1.5.4-1] and on
 * U+0000 [MQTT-1.5.4-2]. We wrap the parser instance's string reader (mqtt-packet 9.0.2, pinned;
 * `strict-parser.test.ts` breaks if an upgrade changes it) and decode with a fatal decoder.
 */
interface ParserInternals {
  _parseNum(): number;
  _pos: number;
  _list: { slice(start: number, end: number): Buffer; length: number };
  packet: { length: number };
  _parseString(): string | null;
}

const fatal = new TextDecoder("utf-8", { fatal: true });

export class StrictParser {
  private readonly parser: Parser;
  private readonly out: Packet[] = [];
  private error: MqttProtocolError | undefined;

  constructor() {
    this.parser = mqtt.parser({});
    const p = this.parser as unknown as ParserInternals;
    p._parseString = () => {
      const length = p._parseNum();
      const end = length + p._pos;
      if (length === -1 || end > p._list.length || end > p.packet.length) return null;
      const bytes = p._list.slice(p._pos, end);
      p._pos += length;
      let s: string;
      try {
        s = fatal.decode(bytes);
      } catch {
        this.error ??= new MqttProtocolError("bad_utf8", "ill-formed UTF-8 string", Reason.MalformedPacket);
        return "";
      }
      if (s.includes("\u0000")) {
        this.error ??= new MqttProtocolError("nul", "U+0000 in a UTF-8 string", Reason.MalformedPacket);
      }
      return s;
    };
    this.parser.on("packet", (pkt: Packet) => this.out.push(pkt));
    this.parser.on("error", (err: unknown) => {
      this.error ??= new MqttProtocolError(
        "malformed",
        `malformed packet: ${err instanceof Error ? err.message : String(err)}`,
        Reason.MalformedPacket,
      );
    });
  }

  /** Parses exactly one whole packet (from `PacketFramer`); throws `MqttProtocolError`. */
  parse(packet: Buffer): Packet {
    this.out.length = 0;
    try {
      this.parser.parse(packet);
    } catch (err) {
      this.error ??= new MqttProtocolError("malformed", "packet could not be parsed", Reason.MalformedPacket, { cause: err });
    }
    if (this.error) throw this.error;
    const pkt = this.out[0];
    if (!pkt || this.out.length !== 1) {
      throw new MqttProtocolError("malformed", "packet length does not match its content", Reason.MalformedPacket);
    }
    return pkt;
  }
}

export function generate(packet: Packet, protocolVersion: number): Buffer {
  return mqtt.generate(packet, { protocolVersion });
}
