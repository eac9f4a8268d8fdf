import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { waitFor } from "@canopy/protocol";
import { buildFrame, crc16, encodeFrame, FrameType, nodeSerialIo, wrapCobs, type SerialConnection } from "@canopy/firmware-bridge";
import { bridgeMcus, bridgeStats, Cleanup, countUp, leafEnv, ptyPair, startBridge } from "./bridge-support.js";

const MAX_FRAME = 256;
const BATCH = 50;
const BIN_RUNS = 120; // 6,000 binary frames
const TXT_RUNS = 80; // 4,000 text lines
const enc = new TextEncoder();
const fatal = new TextDecoder("utf-8", { fatal: true });
const TOKEN_PATH = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,15}$/;
const nonZero = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max, min: 1, max: 255 });
const frame0 = (body: Uint8Array): Buffer => Buffer.concat([Buffer.from([0]), Buffer.from(body), Buffer.from([0])]);
const telemetry = fc.tuple(fc.stringMatching(/^[a-z]{1,12}$/), fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 0xffff }));

/** Binary frames the bridge must drop: each one is dropped exactly once, with a reason. */
const badFrame: fc.Arbitrary<Buffer> = fc.oneof(
  // one corrupted byte anywhere (CRC-16 catches every single-byte error)
  fc.tuple(telemetry, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([[metric, value, seq], at, x]) => {
    const raw = buildFrame({ type: FrameType.Telemetry, flags: 0, seq, metric, value });
    raw[at % raw.length] = (raw[at % raw.length] as number) ^ x;
    return wrapCobs(raw);
  }),
  // a COBS code byte running past the frame end
  fc.tuple(fc.integer({ min: 2, max: 255 }), nonZero(0, 100)).filter(([code, rest]) => code > rest.length + 1).map(([code, rest]) => frame0(Uint8Array.from([code, ...rest]))),
  // longer than the cap
  nonZero(MAX_FRAME + 8, MAX_FRAME + 400).map(frame0),
  // shorter than header + CRC
  fc.uint8Array({ minLength: 1, maxLength: 5 }).map((raw) => wrapCobs(raw)),
  // valid CRC, unknown frame type (8 and 9 are the bootloader's BOOT / BOOT_RESP: a BOOT_RESP CONFIRM
  // from a freshly flashed app is answered, not dropped)
  fc.tuple(fc.integer({ min: 10, max: 255 }), fc.uint8Array({ maxLength: 40 })).map(([type, body]) => {
    const raw = buildFrame({ type: FrameType.Who, flags: 0, seq: 1 });
    const withType = Uint8Array.from([type, ...raw.subarray(1, 4), ...body]);
    return wrapCobs(fixCrc(withType));
  }),
  // valid CRC, a string length running past the end
  fc.tuple(fc.integer({ min: 10, max: 255 }), fc.uint8Array({ maxLength: 8 })).map(([len, rest]) => wrapCobs(fixCrc(Uint8Array.from([1, 0, 0, 1, len, ...rest])))),
  // valid frame, metric outside the token-path rule, or a reserved event name
  fc.string({ minLength: 1, maxLength: 40 }).filter((m) => !TOKEN_PATH.test(m)).map((metric) => encodeFrame({ type: FrameType.Telemetry, flags: 0, seq: 7, metric, value: enc.encode("1") })),
  fc.constantFrom("online", "offline", "ack", "ack.x").map((name) => encodeFrame({ type: FrameType.Event, flags: 0, seq: 9, name, payload: new Uint8Array() })),
);

/** Text lines the bridge must drop. */
const badLine: fc.Arbitrary<Buffer> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 120 }).filter((l) => !/^(hello|tlm|evt|ack|log)( |$)/.test(l) && !l.startsWith("#") && !l.includes("\n")),
  fc.uint8Array({ minLength: 1, maxLength: 60 }).filter((b) => !b.includes(0x0a) && !b.includes(0x0d) && (() => { try { fatal.decode(b); return false; } catch { return true; } })()).map((b) => Buffer.from(b)),
  fc.tuple(fc.integer({ min: 1, max: 31 }).filter((c) => c !== 0x0a && c !== 0x09 && c !== 0x0d), fc.string({ maxLength: 20 })).map(([c, s]) => `tlm x ${String.fromCharCode(c)}${s}`),
  fc.string({ minLength: MAX_FRAME + 1, maxLength: MAX_FRAME + 300 }).filter((l) => !l.includes("\n")),
  fc.constantFrom("hello onlyone", "tlm x", "tlm", "ack abc ok", "ack 70000 ok", "ack 1 maybe", "evt", "evt online", "evt ack.blink 1"),
  fc.string({ minLength: 1, maxLength: 30 }).filter((m) => !TOKEN_PATH.test(m) && !m.includes(" ") && !m.includes("\n")).map((m) => `tlm ${m} 1`),
).map((l) => Buffer.concat([typeof l === "string" ? Buffer.from(l) : l, Buffer.from("\n")]));

/** Appends a correct CRC, so the frame gets past the CRC check and fails on its structure. */
function fixCrc(body: Uint8Array): Uint8Array {
  const crc = crc16(body);
  return Uint8Array.from([...body, crc >> 8, crc & 0xff]);
}

test("fast-check: 10,000 malformed serial frames and lines → each dropped and counted, the link stays up, memory bounded", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-fuzzs-");
  const bin = await ptyPair(cleanup, dir, "bin");
  const txt = await ptyPair(cleanup, dir, "txt");
  const bridge = await startBridge(
    cleanup,
    ["--device", "d1", "--leaf", leaf.server.url, "--data", `${dir.path}/data`, "--serial", bin.a, "--serial", `${txt.a}:115200:text`, "--max-frame-bytes", String(MAX_FRAME)],
    { NODE_OPTIONS: "--expose-gc" },
  );
  const ports: SerialConnection[] = [];
  cleanup.add(() => Promise.all(ports.map((p) => p.close())));
  const binPort = await nodeSerialIo.open(bin.b, 115200);
  const txtPort = await nodeSerialIo.open(txt.b, 115200);
  ports.push(binPort, txtPort);
  binPort.onData(() => {});
  txtPort.onData(() => {});
  await binPort.write(encodeFrame({ type: FrameType.Hello, flags: 0, seq: 1, mcu: "fz-bin", board: "b", firmware: "1", boot: 7 }));
  await txtPort.write("hello fz-txt b 1\n");
  await waitFor(async () => (await bridgeMcus(leaf.nc)).filter((m) => m.online).length === 2, { timeoutMs: 10_000, what: "both MCUs online" });

  const base = (await bridgeStats(leaf.nc)).counters["serial.dropped"] ?? 0;
  let sent = 0;
  const dropped = async (): Promise<number> => ((await bridgeStats(leaf.nc)).counters["serial.dropped"] ?? 0) - base;
  const run = (port: SerialConnection) =>
    fc.asyncProperty(fc.array(port === binPort ? badFrame : badLine, { minLength: BATCH, maxLength: BATCH }), async (inputs) => {
      await port.write(Buffer.concat(inputs));
      sent += inputs.length;
      await waitFor(async () => (await dropped()) >= sent, { timeoutMs: 10_000, what: `${sent} drops counted` });
      assert.equal(await dropped(), sent, "a malformed input was counted twice");
    });
  await fc.assert(run(binPort), { numRuns: 20, endOnFailure: true });
  const warm = await bridgeStats(leaf.nc, true);
  await fc.assert(run(binPort), { numRuns: BIN_RUNS - 20, endOnFailure: true });
  await fc.assert(run(txtPort), { numRuns: TXT_RUNS, endOnFailure: true });
  assert.equal(sent, 10_000);

  // Both links still work: a valid reading on each lands in UP.
  await binPort.write(encodeFrame({ type: FrameType.Telemetry, flags: 0, seq: 2, metric: "after", value: enc.encode("1") }));
  await txtPort.write("tlm after 1\n");
  await waitFor(async () => (await countUp(leaf, "up.d1.tlm.mcu.*.after")) === 2, { timeoutMs: 10_000, what: "readings after the fuzz" });
  const s = await bridgeStats(leaf.nc, true);
  assert.ok(bridge.running);
  assert.equal(s.counters["serial.disconnects"] ?? 0, 0, "the link dropped");
  assert.ok(s.serial.decoderHighWater <= MAX_FRAME + Math.ceil(MAX_FRAME / 254) + 1, `decoder held ${s.serial.decoderHighWater} bytes`);
  const growth = s.memory.heapUsed - warm.memory.heapUsed;
  assert.ok(growth < 4 * 2 ** 20, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);
  t.diagnostic(`inputs ${sent}; ${JSON.stringify(Object.fromEntries(Object.entries(s.counters).filter(([k]) => k.startsWith("serial."))))}; heap +${(growth / 2 ** 20).toFixed(2)} MiB`);
});
