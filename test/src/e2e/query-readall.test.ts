import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { readBucket } from "@canopy/gateway/kv/read";
import { TestServer, tempDir } from "../harness/index.js";

// The collector reads a whole bucket in one ordered-consumer pass while 1000s of devices keep
// rewriting their status (history 1). No key may be lost to a concurrent rewrite.
test("readBucket returns every key's latest value while keys are rewritten during the read", async () => {
  const dir = await tempDir("canopy-readall-");
  const server = await TestServer.hub(join(dir.path, "hub"));
  const nc = await server.connect();
  try {
    const kv = await new Kvm(nc).create("status-test", { history: 1 });
    const N = 3_000;
    for (let i = 0; i < N; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => kv.put(`d${i + j}`, JSON.stringify({ v: 0 }))));
    }
    await kv.delete("d7");
    for (let round = 1; round <= 5; round++) {
      let stop = false;
      const writer = (async () => {
        let k = 0;
        while (!stop) {
          const i = (k++ * 37) % N;
          if (i !== 7) await kv.put(`d${i}`, JSON.stringify({ v: round }));
        }
      })();
      const entries = await readBucket(kv);
      stop = true;
      await writer;
      const keys = new Set(entries.map((e) => e.key));
      const missing = Array.from({ length: N }, (_, i) => `d${i}`).filter((k) => k !== "d7" && !keys.has(k));
      assert.equal(keys.size, N - 1, `round ${round}: ${keys.size} keys; missing ${missing.join(",")} ${JSON.stringify(await Promise.all(missing.map(async (k) => (await kv.get(k))?.revision)))}`);
      assert.equal(keys.has("d7"), false, "deleted key absent");
      assert.equal(entries.length, keys.size, "one entry per key");
    }
  } finally {
    await nc.close();
    await server.stop();
    await dir.remove();
  }
});
