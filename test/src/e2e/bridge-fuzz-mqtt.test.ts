import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { malformed, MAX_PACKET } from "./bridge-fuzz-inputs.js";
import { waitFor } from "@canopy/protocol";
import { freePort } from "../harness/index.js";
import { bridgeStats, Cleanup, leafEnv, startBridge } from "./bridge-support.js";
import { rawExchange } from "./bridge-mqtt-raw.js";

const BATCH = 50;
const RUNS = 200; // 200 × 50 = 10,000 malformed connections
const WARMUP_RUNS = 40;

test("fast-check: 10,000 malformed MQTT inputs → every one refused and counted, the bridge stays up, memory bounded", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-fuzzm-");
  const port = await freePort();
  const bridge = await startBridge(cleanup, ["--device", "d1", "--leaf", leaf.server.url, "--mqtt", `127.0.0.1:${port}`, "--data", `${dir.path}/data`, "--max-packet-bytes", String(MAX_PACKET), "--mqtt-anonymous"], { NODE_OPTIONS: "--expose-gc" });
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
  // Coarse bound across processes (a 4 KiB-per-connection leak fails it); bridge-memory.test.ts checks
  // the per-connection heap in-process, where the measurement is not disturbed by other work.
  assert.ok(growth < 32 * 2 ** 20, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MiB over ${(RUNS - WARMUP_RUNS) * BATCH} connections`);
  t.diagnostic(`inputs ${sent}; rejections ${JSON.stringify(Object.fromEntries(Object.entries(after.counters).filter(([k]) => k.startsWith("mqtt."))))}; heap +${(growth / 2 ** 20).toFixed(2)} MiB, rss ${(settled.memory.rss / 2 ** 20).toFixed(0)} MiB`);
});
