import { test } from "node:test";
import assert from "node:assert/strict";
import { cobsDecode, cobsEncode } from "./cobs.js";
import { crc16 } from "./crc16.js";
import { buildFrame, decodeWireFrame, encodeFrame, parseFrame, FrameType, type Frame } from "./frame.js";
import { parseLine } from "./text.js";
import { FrameError } from "../errors.js";

test("CRC-16/CCITT-FALSE check value", () => {
  assert.equal(crc16(Buffer.from("123456789")), 0x29b1);
});

test("COBS round-trips and never emits a zero byte", () => {
  const cases = [[], [0], [0, 0], [1, 2, 3], Array.from({ length: 254 }, () => 7), Array.from({ length: 255 }, () => 7), Array.from({ length: 600 }, (_, i) => i % 256)];
  for (let i = 0; i < 200; i++) cases.push(Array.from({ length: i * 3 }, () => (Math.random() < 0.2 ? 0 : Math.floor(Math.random() * 256))));
  for (const c of cases) {
    const enc = cobsEncode(Uint8Array.from(c));
    assert.ok(!enc.includes(0));
    assert.deepEqual([...cobsDecode(enc)], c);
  }
  assert.throws(() => cobsDecode(Uint8Array.from([5, 1, 2])), (e: unknown) => e instanceof FrameError && e.reason === "bad_cobs");
});

test("every frame type round-trips through COBS, and corruption is caught", () => {
  const frames: Frame[] = [
    { type: FrameType.Hello, flags: 0, seq: 1, mcu: "m1", board: "rp2040", firmware: "1.2.3", boot: 0xdeadbeef },
    { type: FrameType.Telemetry, flags: 1, seq: 65535, metric: "env.temp", value: Buffer.from("21.5") },
    { type: FrameType.Event, flags: 0, seq: 3, name: "button", payload: Uint8Array.from([0, 1, 0]) },
    { type: FrameType.Command, flags: 0, seq: 4, cmdId: 513, name: "blink", args: Buffer.from("3") },
    { type: FrameType.CommandAck, flags: 0, seq: 5, cmdId: 513, status: 0, detail: Buffer.from("ok") },
    { type: FrameType.LinkAck, flags: 0, seq: 0, acked: 77, status: 1 },
    { type: FrameType.Who, flags: 0, seq: 0 },
  ];
  for (const f of frames) {
    const wire = encodeFrame(f);
    assert.equal(wire[0], 0);
    assert.equal(wire[wire.length - 1], 0);
    const back = decodeWireFrame(wire.subarray(1, wire.length - 1));
    const norm = (x: object) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v instanceof Uint8Array ? [...v] : v]));
    assert.deepEqual(norm(back), norm(f));
    const raw = buildFrame(f);
    raw[2] = (raw[2] as number) ^ 0x10;
    assert.throws(() => parseFrame(raw), (e: unknown) => e instanceof FrameError && e.reason === "bad_crc");
  }
});

test("text lines", () => {
  assert.deepEqual(parseLine(Buffer.from("hello m1 uno 1.0\r")), { kind: "hello", mcu: "m1", board: "uno", firmware: "1.0" });
  assert.deepEqual(parseLine(Buffer.from("tlm temp 21.5")), { kind: "tlm", metric: "temp", value: "21.5" });
  assert.deepEqual(parseLine(Buffer.from("evt door open now")), { kind: "evt", name: "door", payload: "open now" });
  assert.deepEqual(parseLine(Buffer.from("ack 12 err no such pin")), { kind: "ack", cmdId: 12, ok: false, detail: "no such pin" });
  assert.deepEqual(parseLine(Buffer.from("# debug")), { kind: "comment" });
  for (const bad of ["hello m1", "tlm temp", "what", "ack x ok", "tlm a \u0001"]) {
    assert.throws(() => parseLine(Buffer.from(bad)), FrameError, bad);
  }
  assert.throws(() => parseLine(Uint8Array.from([0x74, 0xc3, 0x28])), (e: unknown) => e instanceof FrameError && e.reason === "bad_utf8");
});
