import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { runBridge } from "@canopy/firmware-bridge";
import { Cleanup, leafEnv } from "./bridge-support.js";
import { malformed, MAX_PACKET } from "./bridge-fuzz-inputs.js";
import { rawExchange } from "./bridge-mqtt-raw.js";

// The bridge runs in this process so the heap can be measured after full collections, undisturbed.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

async function heapAfterGc(): Promise<number> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  return process.memoryUsage().heapUsed;
}

test("memory stays bounded: the heap is flat across thousands of malformed MQTT connections", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-bridge-mem-");
  const ctl = new AbortController();
  let port = 0;
  const ready = new Promise<void>((resolve) => {
    const run = runBridge(
      { device: "d1", leaf: leaf.server.url, dataDir: `${dir.path}/data`, config: { mqtt: { listen: "127.0.0.1:0", maxPacketBytes: MAX_PACKET, anonymous: true } }, onReady: (i) => ((port = i.mqttPort ?? 0), resolve()) },
      ctl.signal,
    );
    cleanup.add(async () => {
      ctl.abort();
      await run;
    });
  });
  await ready;
  const inputs = fc.sample(malformed, { numRuns: 8_000, seed: 42 });
  let n = 0;
  const send = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i += 50) {
      await Promise.all(
        inputs.slice(n, n + 50).map((build) => {
          const x = build(`mem${n++}`);
          return rawExchange(port, x.chunks, { version: x.version, end: true, waitMs: 5_000 });
        }),
      );
    }
  };
  await send(2_000); // warm-up: JIT, buffers, LMDB pages
  const warm = await heapAfterGc();
  await send(3_000);
  const mid = await heapAfterGc();
  await send(3_000);
  const end = await heapAfterGc();
  const mib = (b: number): string => (b / 2 ** 20).toFixed(2);
  t.diagnostic(`heap after GC: ${mib(warm)} → ${mib(mid)} → ${mib(end)} MiB over 6,000 connections`);
  // A leak of 512 bytes per connection would add 3 MiB here (noise, client side included, is ~±2 MiB).
  assert.ok(end - warm < 3 * 2 ** 20, `heap grew ${mib(end - warm)} MiB`);
});
