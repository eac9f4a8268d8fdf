import { test } from "node:test";
import assert from "node:assert/strict";
import mqtt from "mqtt-packet";
import { MqttProtocolError } from "../errors.js";
import { PacketFramer } from "./framer.js";
import { InflightQueue } from "./inflight.js";
import { StrictParser } from "./strict-parser.js";

const reason = (r: string) => (e: unknown) => e instanceof MqttProtocolError && e.reason === r;

test("framer: whole packets out, oversize refused from the fixed header alone", () => {
  const f = new PacketFramer(100);
  const a = mqtt.generate({ cmd: "pingreq" });
  const b = mqtt.generate({ cmd: "publish", topic: "m/tlm/x", payload: Buffer.from("1"), qos: 0, dup: false, retain: false });
  const both = Buffer.concat([a, b]);
  assert.equal(f.push(both.subarray(0, 3)).length, 1);
  assert.equal(f.push(both.subarray(3)).length, 1);
  assert.equal(f.buffered, 0);
  assert.throws(() => new PacketFramer(100).push(Buffer.from([0x30, 0xff, 0x01])), reason("oversize"));
  assert.throws(() => new PacketFramer(100).push(Buffer.from([0x00, 0x00])), reason("protocol_error"));
});

test("strict parser: ill-formed UTF-8 and U+0000 are errors (pins mqtt-packet 9.0.2 internals)", () => {
  const connect = mqtt.generate({ cmd: "connect", clientId: "m1", protocolVersion: 4, protocolId: "MQTT", clean: true, keepalive: 10 });
  const ok = new StrictParser();
  assert.equal(ok.parse(connect).cmd, "connect");
  const pub = mqtt.generate({ cmd: "publish", topic: "m1/tlm/ab", payload: Buffer.from("1"), qos: 0, dup: false, retain: false });
  assert.equal(ok.parse(pub).cmd, "publish");
  const bad = Buffer.from(pub);
  bad[bad.indexOf(Buffer.from("ab"))] = 0xc3;
  bad[bad.indexOf(Buffer.from("b"), 8)] = 0x28;
  const p2 = new StrictParser();
  p2.parse(connect);
  assert.throws(() => p2.parse(bad), reason("bad_utf8"));
  const nul = mqtt.generate({ cmd: "publish", topic: "m1/tlm/a\u0000", payload: Buffer.from("1"), qos: 0, dup: false, retain: false });
  const p3 = new StrictParser();
  p3.parse(connect);
  assert.throws(() => p3.parse(nul), reason("nul"));
});

test("PUBACKs leave in arrival order even when the stream acks out of order", () => {
  const q = new InflightQueue();
  const a = q.add(1, 10);
  const b = q.add(2, 10);
  const c = q.add(undefined, 10);
  const d = q.add(3, 10);
  assert.deepEqual(q.settle(b), []);
  assert.deepEqual(q.settle(d), []);
  assert.deepEqual(q.settle(a).map((x) => x.messageId), [1, 2]);
  assert.deepEqual(q.settle(c).map((x) => x.messageId), [3]);
  assert.equal(q.bytes, 0);
  assert.equal(q.qos1, 0);
});
