#!/usr/bin/env node
// bench/flash: bytes/s of putting an image on a microcontroller over a 115,200-baud serial link.
// Run after `npm run build` (needs the AVR kit: CANOPY_WITH_AVR=1 bash deploy/scripts/ensure-deps.sh):
//   node bench/flash.mjs [--pad 31800]
// One run measures, on the same machine:
//   1. the line rate: 115,200 baud at 8N1 = 11,520 B/s (theoretical ceiling of any protocol on the link);
//   2. raw bytes through the simavr MCU's UART (a real-time ATmega328P at 16 MHz in simavr, its UART on a
//      pty): the same number of bytes as the image, written to the running app, timed to its reply.
//      simavr paces its UART at 11 bits a byte (it counts a parity bit even when there is none) of the
//      app's 117,647 baud (U2X, UBRR 16), so ~10,700 B/s is this link's own ceiling;
//   3. avrdude 7.1 + optiboot (STK500v1) through Canopy's avrdude flasher on that link: the write phase
//      alone and the whole flash (sync, erase, write, read-back verify, banner);
//   4. raw bytes through a socat pty pair opened at 115,200: ptys do not pace at the baud rate, so this
//      is the transport's own ceiling, not the line's.
// The image is the test app padded to fill what an ATmega328P leaves beside optiboot (32,256 bytes).
import { spawn } from "node:child_process";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { waitFor } from "@canopy/protocol";
import { AvrdudeFlasher } from "@canopy/firmware-bridge/flash/avrdude";
import { checkIntelHex } from "@canopy/firmware-bridge/flash/avrdude-hex";
import { nodeSerialIo } from "@canopy/firmware-bridge/serial/io";
import { buildAvrApp, SimAvr } from "@canopy/test/flash-avr/simavr";

const { values } = parseArgs({ options: { pad: { type: "string", default: "31800" } } });
const LINE_BPS = 115_200 / 10; // 8 data bits + start + stop
const dir = await mkdtemp(join(tmpdir(), "canopy-bench-flash-"));
const cleanups = [() => rm(dir, { recursive: true, force: true })];

/** Opens a port and collects what arrives; `until(re)` waits for a match after the given offset. */
async function openCollecting(path) {
  const conn = await nodeSerialIo.open(path, 115_200);
  let text = "";
  conn.onData((b) => (text += b.toString("latin1")));
  return {
    conn,
    mark: () => text.length,
    until: (re, from, timeoutMs) => waitFor(() => re.test(text.slice(from)), { timeoutMs, intervalMs: 2, what: String(re) }),
  };
}

/** Deterministic filler without "\n": the app's line reader sees one long ignored line. */
function filler(n) {
  const b = Buffer.alloc(n);
  for (let i = 0, x = 1; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = 0x20 + ((x >>> 16) % 0x5e);
  }
  return b;
}

/** Raw bytes into the running app's UART, then "who": the hello that answers marks the end. */
async function rawThroughMcu(port, bytes) {
  const p = await openCollecting(port);
  try {
    // Opening reset the MCU into optiboot; ask until the app is up.
    await waitFor(async () => {
      const at = p.mark();
      await p.conn.write("who\n");
      return p.until(/hello \S+ \S+ \S+\n/, at, 500).then(() => true, () => false);
    }, { timeoutMs: 20_000, what: "app banner before the raw write" });
    const at = p.mark();
    const t0 = performance.now();
    await p.conn.write(Buffer.concat([bytes, Buffer.from("\nwho\n")]));
    await p.until(/hello \S+ \S+ \S+\n/, at, 60_000);
    return (bytes.length / (performance.now() - t0)) * 1000;
  } finally {
    await p.conn.close();
  }
}

async function rawThroughSocat(bytes) {
  const a = join(dir, "pty-a");
  const b = join(dir, "pty-b");
  const socat = spawn("socat", [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: "ignore" });
  cleanups.push(() => socat.kill());
  await waitFor(() => existsSync(a) && existsSync(b), { timeoutMs: 5000, what: "socat ptys" });
  const rx = await openCollecting(b);
  const tx = await nodeSerialIo.open(a, 115_200);
  try {
    const t0 = performance.now();
    await tx.write(bytes);
    await waitFor(() => rx.mark() >= bytes.length, { timeoutMs: 60_000, intervalMs: 1, what: "all bytes through socat" });
    return (bytes.length / (performance.now() - t0)) * 1000;
  } finally {
    await tx.close();
    await rx.conn.close();
  }
}

try {
  const file = await buildAvrApp("9.9.9", { pad: Number(values.pad) });
  const data = await readFile(file);
  const size = checkIntelHex(data).bytes;
  const sim = await SimAvr.start(dir);
  cleanups.unshift(() => sim.stop());

  const say = (m) => process.stderr.write(`bench/flash: ${m}\n`);
  say(`avrdude flash of ${size} bytes`);
  const events = [];
  const t0 = performance.now();
  const res = await new AvrdudeFlasher().flash({
    port: sim.port,
    baud: 115_200,
    image: { data, format: "avr-hex", sha256: "n/a", version: "9.9.9", board: "uno" },
    signal: new AbortController().signal,
    deadlineMs: 180_000,
    onProgress: (p) => events.push({ ...p, at: performance.now() }),
  });
  const total = performance.now() - t0;
  if (!res.confirmed) throw new Error(`avrdude flash not confirmed: ${JSON.stringify(res)}`);
  const writing = events.filter((e) => e.phase === "flashing");
  const booting = events.find((e) => e.phase === "booting");
  const writeMs = (writing.at(-1)?.at ?? 0) - (writing[0]?.at ?? 0);
  const avrdudeMs = (booting?.at ?? performance.now()) - t0;
  const avrdudeWrite = (size / writeMs) * 1000;
  const avrdudeWhole = (size / avrdudeMs) * 1000;

  say("raw bytes through the simavr UART");
  const rawMcu = await rawThroughMcu(sim.port, filler(size));
  say("raw bytes through a socat pty pair");
  const rawPty = await rawThroughSocat(filler(size));

  const fig = (name, value, baseline, goal = null) => ({ name, value: Math.round(value), unit: "B/s", baseline: Math.round(baseline), ratio: +(value / baseline).toFixed(3), goal, better: "higher" });
  const figures = [
    fig("raw_uart_simavr", rawMcu, LINE_BPS),
    fig("avrdude_write_phase", avrdudeWrite, LINE_BPS),
    fig("avrdude_write_vs_raw_uart", avrdudeWrite, rawMcu),
    fig("avrdude_whole_flash", avrdudeWhole, LINE_BPS),
    fig("raw_socat_pty", rawPty, LINE_BPS),
  ];
  console.log(`\nbench/flash  image ${size} bytes (test app + ${values.pad} bytes padding; ATmega328P holds 32,256 beside optiboot)`);
  console.log(`line rate 115,200 baud 8N1          ${LINE_BPS} B/s (theoretical)`);
  console.log(`raw bytes through the simavr UART   ${rawMcu.toFixed(0)} B/s  = ${(rawMcu / LINE_BPS).toFixed(2)} × line rate`);
  console.log(`avrdude write phase (STK500)        ${avrdudeWrite.toFixed(0)} B/s  = ${(avrdudeWrite / LINE_BPS).toFixed(2)} × line rate, ${(avrdudeWrite / rawMcu).toFixed(2)} × raw UART`);
  console.log(`avrdude whole flash (write+verify)  ${avrdudeWhole.toFixed(0)} B/s  = ${(avrdudeWhole / LINE_BPS).toFixed(2)} × line rate  (${(avrdudeMs / 1000).toFixed(2)} s; with banner ${(total / 1000).toFixed(2)} s)`);
  console.log(`raw bytes through a socat pty pair  ${rawPty.toFixed(0)} B/s  = ${(rawPty / LINE_BPS).toFixed(1)} × line rate (ptys do not pace at the baud rate)`);
  console.log(JSON.stringify({ bench: "flash", image_bytes: size, figures }));
} finally {
  for (const c of cleanups) await c();
}
