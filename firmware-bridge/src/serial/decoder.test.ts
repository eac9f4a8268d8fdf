import { test } from "node:test";
import assert from "node:assert/strict";
import { SerialDecoder, type SerialMode } from "./decoder.js";
import { encodeFrame, FrameType, type Frame } from "./frame.js";
import type { TextLine } from "./text.js";

function harness(mode: SerialMode = "auto", max = 64) {
  const frames: Frame[] = [];
  const lines: TextLine[] = [];
  const drops: string[] = [];
  const d = new SerialDecoder({ frame: (f) => frames.push(f), line: (l) => lines.push(l), drop: (r) => drops.push(r) }, mode, max);
  return { d, frames, lines, drops };
}
const tlm = (seq: number) => encodeFrame({ type: FrameType.Telemetry, flags: 0, seq, metric: "t", value: Buffer.from(String(seq)) });

test("auto mode: the first valid frame picks binary, byte-at-a-time input works", () => {
  const h = harness();
  for (const b of Buffer.concat([Buffer.from("boot noise\r\n"), tlm(1), tlm(2)])) h.d.push(Uint8Array.of(b));
  assert.equal(h.d.currentMode, "binary");
  assert.deepEqual(h.frames.map((f) => f.seq), [1, 2]);
  assert.deepEqual(h.drops, []);
});

test("oversize frames are dropped once, skipped to the next delimiter, and the link carries on", () => {
  const h = harness("binary", 64);
  h.d.push(Buffer.concat([Buffer.from([0]), Buffer.alloc(500, 7), Buffer.from([0]), tlm(3)]));
  assert.deepEqual(h.drops, ["oversize"]);
  assert.deepEqual(h.frames.map((f) => f.seq), [3]);
  assert.ok(h.d.highWater <= 64 + 2);
});

test("a partial frame at unplug is dropped and counted; the next frame is whole", () => {
  const h = harness("binary");
  const f = tlm(4);
  h.d.push(f.subarray(0, 6));
  h.d.reset();
  h.d.push(tlm(5));
  assert.deepEqual(h.drops, ["partial"]);
  assert.deepEqual(h.frames.map((x) => x.seq), [5]);
});

test("a text hello on a binary port switches it (another sketch was flashed)", () => {
  const h = harness();
  h.d.push(tlm(1));
  h.d.push(Buffer.from("tlm x 1\nhello m2 uno 1\ntlm y 2\n"));
  assert.equal(h.d.currentMode, "text");
  assert.deepEqual(h.lines.map((l) => l.kind), ["hello", "tlm"]);
  h.d.push(encodeFrame({ type: FrameType.Hello, flags: 0, seq: 1, mcu: "m3", board: "b", firmware: "f", boot: 1 }));
  assert.equal(h.d.currentMode, "binary");
});
