#!/usr/bin/env node
// Bytes on the leaf link for a telemetry stream, with and without leaf-link compression, same run.
// A device's UP holds N telemetry readings (JSON, as apps and the bridge publish them); the hub then
// sources it (the drain after an outage, the bulk of what a cellular device sends). The leaf's
// link to the hub runs through a TCP relay that counts bytes both ways. Baseline: `compression: off`.
// Measured: `s2_auto` (Canopy's default) on loopback, where nats-server picks "uncompressed" (RTT
// under its first 10 ms threshold), `s2_auto` on a link with 60 ms RTT (the relay delays every
// chunk 30 ms each way, as a cellular link), and `s2_fast` forced. The mode nats-server negotiated
// is read back from the leaf's /leafz.
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { LinkProxy, TestServer, tempDir, waitForCount } from "@canopy/test/harness/index";
import { ensureUpStream, DEFAULT_UP_LIMITS } from "@canopy/agent/up/stream";
import { emit, figure } from "./lib/report.mjs";

const N = Number(process.env.CANOPY_BENCH_COMPRESSION_MSGS ?? 20_000);
const DEVICE = "cmp1";
const SUBJECT = `up.${DEVICE}.tlm.env`;

/** A reading as a device app publishes it: small JSON, slowly changing values. */
const reading = (i) =>
  JSON.stringify({ ts: 1_795_000_000_000 + i * 1000, temp: +(21 + Math.sin(i / 50) * 2).toFixed(2), hum: +(40 + Math.cos(i / 70) * 5).toFixed(1), rssi: -60 - (i % 7), seq: i });

async function run(compression, delayMs) {
  const dir = await tempDir();
  const hub = await TestServer.hub(join(dir.path, "hub"));
  const proxy = new LinkProxy(hub.ports.leaf, "127.0.0.1", delayMs);
  await proxy.start();
  const leaf = await TestServer.leaf(join(dir.path, "leaf"), DEVICE, proxy.port, await hub.deviceAuth(DEVICE, join(dir.path, "auth")), { compression });
  try {
    await hub.waitForLeaves(1);
    const lnc = await connect({ servers: leaf.url });
    await ensureUpStream(await jetstreamManager(lnc), DEVICE, DEFAULT_UP_LIMITS);
    let i = 0;
    const js = jetstream(lnc);
    const worker = async () => {
      while (i < N) {
        const k = i++;
        await js.publish(SUBJECT, reading(k), { msgID: `${DEVICE}:${k}` });
      }
    };
    await Promise.all(Array.from({ length: 200 }, worker));
    const leafz = await (await fetch(`http://127.0.0.1:${leaf.ports.http}/leafz`)).json();
    const mode = leafz.leafs?.[0]?.compression ?? "unknown";
    const payloadBytes = Array.from({ length: N }, (_, k) => Buffer.byteLength(reading(k)) + SUBJECT.length).reduce((a, b) => a + b, 0);
    const hnc = await hub.connect();
    const up0 = proxy.bytesUp;
    const down0 = proxy.bytesDown;
    const t0 = Date.now();
    await (await jetstreamManager(hnc)).streams.add({ name: "FLEET", sources: [{ name: "UP", external: { api: `$JS.${DEVICE}.API`, deliver: `du.${DEVICE}` } }] });
    await waitForCount(hnc, "FLEET", SUBJECT, N, 300_000);
    const ms = Date.now() - t0;
    const result = { compression, delayMs, mode, up: proxy.bytesUp - up0, down: proxy.bytesDown - down0, ms, payloadBytes };
    await lnc.close();
    await hnc.close();
    return result;
  } finally {
    await leaf.stop();
    await proxy.stop();
    await hub.stop();
    await dir.remove();
  }
}

const runs = [];
for (const [compression, delayMs] of [["off", 0], ["s2_auto", 0], ["off", 30], ["s2_auto", 30], ["s2_fast", 0]]) {
  const r = await run(compression, delayMs);
  runs.push(r);
  console.log(
    `${compression.padEnd(8)} RTT ${String(2 * delayMs).padStart(3)} ms → negotiated ${r.mode.padEnd(16)} leaf→hub ${r.up.toLocaleString("en")} B ` +
      `(${(r.up / N).toFixed(1)} B/msg; payload+subject ${(r.payloadBytes / N).toFixed(1)} B/msg), hub→leaf ${r.down.toLocaleString("en")} B, drained in ${r.ms} ms`,
  );
}
const [offLo, autoLo, offHi, autoHi, fast] = runs;
console.log(`s2_auto at 60 ms RTT sends ${(autoHi.up / offHi.up).toFixed(3)}× the bytes of no compression; s2_fast ${(fast.up / offLo.up).toFixed(3)}×; s2_auto on loopback ${(autoLo.up / offLo.up).toFixed(3)}×`);
emit("leaf-compression", [
  figure({ name: "leaf→hub bytes per telemetry msg, s2_auto at 60 ms RTT vs off", value: autoHi.up / N, unit: "B/msg", baseline: offHi.up / N, better: "lower", note: `negotiated ${autoHi.mode}` }),
  figure({ name: "leaf→hub bytes per telemetry msg, s2_fast vs off (loopback)", value: fast.up / N, unit: "B/msg", baseline: offLo.up / N, better: "lower", note: `negotiated ${fast.mode}` }),
  figure({ name: "leaf→hub bytes per telemetry msg, s2_auto on loopback vs off", value: autoLo.up / N, unit: "B/msg", baseline: offLo.up / N, better: "lower", note: `negotiated ${autoLo.mode}` }),
], { msgs: N, runs });
