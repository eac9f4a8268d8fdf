import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { waitFor } from "@canopy/protocol";
import { freePort } from "../harness/index.js";
import { bridgeStats, Cleanup, leafEnv, startBridge } from "./bridge-support.js";
import { connectPacket, generate, publishPacket, rawExchange } from "./bridge-mqtt-raw.js";

const MAX_PACKET = 4096;
const BATCH = 50;
const RUNS = 200; // 200 × 50 = 10,000 malformed connections
const WARMUP_RUNS = 40;

type Input = { chunks: Buffer[]; version: 4 | 5 };
/** Built per connection with a fresh client id: concurrent connections must not take each other over. */
type Build = (id: string) => Input;
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
const malformed: fc.Arbitrary<Build> = fc.oneof(
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

test("fast-check: 10,000 malformed MQTT inputs → every one refused and counted, the bridge stays up, memory bounded", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-fuzzm-");
  const port = await freePort();
  const bridge = await startBridge(cleanup, ["--device", "d1", "--leaf", leaf.server.url, "--mqtt", `127.0.0.1:${port}`, "--data", `${dir.path}/data`, "--max-packet-bytes", String(MAX_PACKET)], { NODE_OPTIONS: "--expose-gc" });
  const before = await bridgeStats(leaf.nc);
  let sent = 0;
  let ids = 0;
  const property = fc.asyncProperty(fc.array(malformed, { minLength: BATCH, maxLength: BATCH }), async (inputs) => {
    const results = await Promise.all(
      inputs.map((build) => {
        const i = build(`fz${++ids}`);
        return rawExchange(port, i.chunks, { version: i.version, end: true, waitMs: 5_000 });
      }),
    );
    sent += inputs.length;
    // end:true half-closes after writing, so a refusal shows as the server closing before our timer.
    for (const r of results) assert.ok(r.closedByServer, "a connection was left open");
  });
  // Warm-up (JIT, buffers, LMDB maps), then the heap after a full GC must stay flat for the rest.
  await fc.assert(property, { numRuns: WARMUP_RUNS });
  const warm = await bridgeStats(leaf.nc, true);
  await fc.assert(property, { numRuns: RUNS - WARMUP_RUNS, interruptAfterTimeLimit: 150_000 });
  assert.ok(sent >= 10_000, `only ${sent} inputs ran`);
  const after = await waitFor(
    async () => {
      const s = await bridgeStats(leaf.nc);
      return (s.counters["mqtt.rejected"] ?? 0) - (before.counters["mqtt.rejected"] ?? 0) >= sent && s;
    },
    { timeoutMs: 15_000, what: "every rejection counted" },
  ).catch(async (err: unknown) => {
    const s = await bridgeStats(leaf.nc);
    throw new Error(`${String(err)}: sent ${sent}, counters ${JSON.stringify(s.counters)}`);
  });
  assert.equal((after.counters["mqtt.rejected"] ?? 0) - (before.counters["mqtt.rejected"] ?? 0), sent, JSON.stringify(after.counters));
  assert.equal(after.counters["mqtt.internal_error"] ?? 0, 0, "an input reached an unexpected code path");
  assert.ok(bridge.running, "the bridge process died");
  assert.ok((after.mqtt?.framerHighWater ?? Infinity) <= MAX_PACKET, `buffered ${after.mqtt?.framerHighWater} bytes`);
  await waitFor(async () => (await bridgeStats(leaf.nc)).mqtt?.connections === 0, { timeoutMs: 10_000, what: "all connections gone" });
  // Heap after a full GC: a per-connection leak of even 1 KiB would show as +10 MiB here.
  const settled = await bridgeStats(leaf.nc, true);
  const growth = settled.memory.heapUsed - warm.memory.heapUsed;
  assert.ok(growth < 4 * 2 ** 20, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MiB over ${(RUNS - WARMUP_RUNS) * BATCH} connections`);
  t.diagnostic(`inputs ${sent}; rejections ${JSON.stringify(Object.fromEntries(Object.entries(after.counters).filter(([k]) => k.startsWith("mqtt."))))}; heap +${(growth / 2 ** 20).toFixed(2)} MiB, rss ${(settled.memory.rss / 2 ** 20).toFixed(0)} MiB`);
});
