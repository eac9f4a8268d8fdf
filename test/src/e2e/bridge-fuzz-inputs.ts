import fc from "fast-check";
import { connectPacket, generate, publishPacket } from "./bridge-mqtt-raw.js";

/** Malformed MQTT input for the fuzz and memory tests. */
export const MAX_PACKET = 4096;

export type Input = { chunks: Buffer[]; version: 4 | 5 };
/** Built per connection with a fresh client id: concurrent connections must not take each other over. */
export type Build = (id: string) => Input;
const fatal = new TextDecoder("utf-8", { fatal: true });
const version = fc.constantFrom<4 | 5>(4, 5);
const ID = /^[A-Za-z0-9_-]{1,64}$/;

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** Each arbitrary yields input the bridge must refuse: every one closes its connection and counts once. */
export const malformed: fc.Arbitrary<Build> = fc.oneof(
  // client id outside the id rule
  fc.tuple(fc.string({ maxLength: 80 }).filter((s) => !ID.test(s) && !s.includes("\u0000")), version).map(([id, v]) => () => ({ version: v, chunks: [connectPacket(id, v)] })),
  // PUBLISH topics outside the map (3.1.1 closes for every one of them)
  fc.string({ minLength: 1, maxLength: 100 }).filter((t) => !/^[^/]*\/(tlm|evt|ack|hello)/.test(t)).map((t) => (id: string) => ({ version: 4 as const, chunks: [connectPacket(id), publishPacket(t, "1")] })),
  // ill-formed UTF-8 in the topic
  fc.uint8Array({ minLength: 1, maxLength: 40 }).filter((b) => { try { fatal.decode(b); return false; } catch { return true; } }).map((bytes) => (id: string) => {
    const p = publishPacket(`${id}/tlm/` + "x".repeat(bytes.length), "1");
    const at = p.indexOf(Buffer.from("x".repeat(bytes.length)));
    Buffer.from(bytes).copy(p, at);
    return { version: 4 as const, chunks: [connectPacket(id), p] };
  }),
  // reserved packet type 0 or AUTH under 3.1.1, followed by noise
  fc.tuple(fc.constantFrom(0x00, 0x0f, 0xf0), fc.uint8Array({ minLength: 1, maxLength: 300 })).map(([b, rest]) => (id: string) => ({ version: 4 as const, chunks: [connectPacket(id), Buffer.from([b, ...rest])] })),
  // fixed header declaring more than the cap
  fc.tuple(fc.integer({ min: 0x1, max: 0xe }), fc.integer({ min: MAX_PACKET, max: 2 ** 28 - 1 })).map(([type, len]) => (id: string) => ({ version: 4 as const, chunks: [connectPacket(id), Buffer.from([type << 4, ...varint(len)])] })),
  // QoS 2, second CONNECT, packets only a server may send, PUBREL without a QoS 2 flow
  fc.tuple(version, fc.constantFrom("qos2", "connect", "connack", "suback", "pubrel", "pubcomp")).map(([v, kind]) => (id: string) => {
    const second =
      kind === "qos2" ? publishPacket(`${id}/tlm/x`, "1", v, 2)
      : kind === "connect" ? connectPacket(id, v)
      : kind === "connack" ? generate({ cmd: "connack", sessionPresent: false, returnCode: 0, reasonCode: 0 }, v)
      : kind === "suback" ? generate({ cmd: "suback", messageId: 1, granted: [0] }, v)
      : generate({ cmd: kind, messageId: 1 } as never, v);
    return { version: v, chunks: [connectPacket(id, v), second] };
  }),
  // a valid packet cut short, then EOF
  fc.tuple(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 100 })).map(([len, cut]) => (id: string) => {
    const p = publishPacket(`${id}/tlm/x`, "y".repeat(len));
    return { version: 4 as const, chunks: [connectPacket(id), p.subarray(0, Math.max(1, p.length - cut))] };
  }),
);

