#!/usr/bin/env node
// bench/flash: bytes/s of putting an image on a microcontroller over a 115,200-baud serial link.
// Run after `npm run build` (needs the AVR kit: CANOPY_WITH_AVR=1 bash deploy/scripts/ensure-deps.sh):
//   node bench/flash.mjs [--pad 31800]
// One run measures, on the same machine:
//   1. the line rate: 115,200 baud at 8N1 = 11,520 B/s (theoretical ceiling of any protocol on the link);
//   2. raw bytes through the simavr MCU's UART (a real-time ATmega328P at 16 MHz in simavr, its UART on a
//      pty): the same number of bytes as the image, written to the running app, timed to its reply.
//      The harness paces host bytes at 115,200 8N1 in simulated time (simavr's UART alone does not);
//      the simulation runs at most at real time and slower on a loaded host, so the figure is given
//      in wall time and in MCU time, with the simulation's speed;
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
import { emit, figure } from "./lib/report.mjs";

const { values } = parseArgs({ options: { pad: { type: "string", default: "31800" } } });
const LINE_BPS = 115_200 / 10; // 8 data bits + start + stop
const CLOCK_MS = 20;
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
async function rawThroughMcu(sim, bytes) {
  const port = sim.port;
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
    const c0 = await nextClock(sim);
    await p.conn.write(Buffer.concat([bytes, Buffer.from("\nwho\n")]));
    await p.until(/hello \S+ \S+ \S+\n/, at, 120_000);
    const wallMs = performance.now() - t0;
    const c1 = await nextClock(sim);
    const simMs = c1.simMs - c0.simMs;
    return { wall: (bytes.length / wallMs) * 1000, mcu: (bytes.length / simMs) * 1000, speed: simMs / (c1.wallMs - c0.wallMs) };
  } finally {
    await p.conn.close();
  }
}

/** The harness's next clock report (sent every CLOCK_MS). */
async function nextClock(sim) {
  const last = sim.clock();
  return waitFor(() => (sim.clock().wallMs > last.wallMs ? sim.clock() : undefined), { timeoutMs: 5000, intervalMs: 5, what: "simavr clock" });
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
  const sim = await SimAvr.start(dir, "uno", { clockMs: CLOCK_MS });
  cleanups.unshift(() => sim.stop());

  const say = (m) => process.stderr.write(`bench/flash: ${m}\n`);
  say(`avrdude flash of ${size} bytes`);
  const events = [];
  const t0 = performance.now();
  let c0;
  const res = await new AvrdudeFlasher().flash({
    port: sim.port,
    baud: 115_200,
    image: { data, format: "avr-hex", sha256: "n/a", version: "9.9.9", board: "uno" },
    signal: new AbortController().signal,
    deadlineMs: 180_000,
    onProgress: (p) => {
      if (p.phase === "flashing" && !c0) c0 = sim.clock();
      events.push({ ...p, at: performance.now(), clock: sim.clock() });
    },
  });
  const total = performance.now() - t0;
  if (!res.confirmed) throw new Error(`avrdude flash not confirmed: ${JSON.stringify(res)}`);
  const writing = events.filter((e) => e.phase === "flashing");
  const booting = events.find((e) => e.phase === "booting");
  const writeMs = (writing.at(-1)?.at ?? 0) - (writing[0]?.at ?? 0);
  const avrdudeMs = (booting?.at ?? performance.now()) - t0;
  const avrdudeWrite = (size / writeMs) * 1000;
  const avrdudeWhole = (size / avrdudeMs) * 1000;
  const w1 = writing.at(-1)?.clock;
  const writeSpeed = c0 && w1 && w1.wallMs > c0.wallMs ? (w1.simMs - c0.simMs) / (w1.wallMs - c0.wallMs) : NaN;

  say("raw bytes through the simavr UART");
  const raw = await rawThroughMcu(sim, filler(size));
  const rawMcu = raw.wall;
  say("raw bytes through a socat pty pair");
  const rawPty = await rawThroughSocat(filler(size));

  const fig = (name, value, baseline, note) => figure({ name, value, unit: "B/s", baseline, better: "higher", ...(note ? { note } : {}) });
  const figures = [
    fig("raw bytes through the simavr UART (vs line rate)", rawMcu, LINE_BPS, `simulation ran at ${raw.speed.toFixed(2)}× real time`),
    fig("raw bytes through the simavr UART in MCU time (vs line rate)", raw.mcu, LINE_BPS, "what a real-time MCU sees: the harness paces the wire at 115,200 8N1"),
    fig("avrdude write phase (vs line rate)", avrdudeWrite, LINE_BPS, `simulation ran at ${writeSpeed.toFixed(2)}× real time`),
    fig("avrdude write phase (vs raw bytes through the same UART)", avrdudeWrite, rawMcu),
    fig("avrdude whole flash incl. verify (vs line rate)", avrdudeWhole, LINE_BPS),
    fig("raw bytes through a socat pty pair (vs line rate)", rawPty, LINE_BPS, "ptys do not pace at the baud rate"),
  ];
  console.log(`\nbench/flash  image ${size} bytes (test app + ${values.pad} bytes padding; ATmega328P holds 32,256 beside optiboot)`);
  console.log(`line rate 115,200 baud 8N1          ${LINE_BPS} B/s (theoretical)`);
  console.log(`raw bytes through the simavr UART   ${rawMcu.toFixed(0)} B/s  = ${(rawMcu / LINE_BPS).toFixed(2)} × line rate (simulation at ${raw.speed.toFixed(2)}× real time; ${raw.mcu.toFixed(0)} B/s in MCU time)`);
  console.log(`avrdude write phase (STK500)        ${avrdudeWrite.toFixed(0)} B/s  = ${(avrdudeWrite / LINE_BPS).toFixed(2)} × line rate, ${(avrdudeWrite / rawMcu).toFixed(2)} × raw UART (simulation at ${writeSpeed.toFixed(2)}× real time)`);
  console.log(`avrdude whole flash (write+verify)  ${avrdudeWhole.toFixed(0)} B/s  = ${(avrdudeWhole / LINE_BPS).toFixed(2)} × line rate  (${(avrdudeMs / 1000).toFixed(2)} s; with banner ${(total / 1000).toFixed(2)} s)`);
  console.log(`raw bytes through a socat pty pair  ${rawPty.toFixed(0)} B/s  = ${(rawPty / LINE_BPS).toFixed(1)} × line rate (ptys do not pace at the baud rate)`);
  emit("flash", figures, { imageBytes: size });
} finally {
  for (const c of cleanups) await c();
}
