import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SerialPortMock } from "serialport";
import { CanopyError, ErrorCode, waitFor } from "@canopy/protocol";
import { Counters } from "../counters.js";
import { McuHub } from "../core/hub.js";
import { silentLogger } from "../log.js";
import type { DedupKey, UpPublisher } from "../nats/publisher.js";
import { McuRegistry } from "../registry/registry.js";
import { openBridgeStore } from "../registry/store.js";
import { encodeFrame, FLAG_RETRANSMIT, FrameType, LINK_ACK_DISK_FULL, parseFrame } from "./frame.js";
import { mockSerialIo } from "./io.js";
import { PortLink } from "./link.js";
import { cobsDecode } from "./cobs.js";

type Publish = (subject: string, data: Uint8Array, dedup?: DedupKey) => Promise<unknown>;

/** A PortLink on serialport's mock binding with a fake publisher; returns the port and the link acks it wrote. */
async function mockLink(t: { after(fn: () => Promise<void>): void }, path: string, publish: Publish) {
  const dir = await mkdtemp(join(tmpdir(), "canopy-link-"));
  const store = openBridgeStore(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const publisher = { publish } as unknown as UpPublisher;
  const counters = new Counters();
  const hub = new McuHub({ device: "d1", publisher, registry: new McuRegistry(store.mcus), counters, log: silentLogger(), commandTimeoutMs: 1000 });
  SerialPortMock.binding.createPort(path, { record: true });
  const link = new PortLink({ path, baudRate: 115200, mode: "auto", maxFrameBytes: 256, io: mockSerialIo, hub, counters, log: silentLogger() });
  const ctl = new AbortController();
  const running = link.run(ctl.signal);
  const port = await waitFor(() => mockSerialIo.ports.get(path)?.isOpen && mockSerialIo.ports.get(path), { timeoutMs: 2000, what: "port open" });
  const acks = () =>
    (port.port?.recording ?? Buffer.alloc(0))
      .toString("latin1")
      .split("\u0000")
      .filter((s) => s.length > 0 && !s.includes("who"))
      .map((s) => parseFrame(cobsDecode(Buffer.from(s, "latin1"))))
      .filter((f) => f.type === FrameType.LinkAck);
  return { port, acks, counters, ctl, running };
}

/** The link logic against serialport's mock binding: no pty, no NATS, a recording fake publisher. */
test("PortLink on the mock binding: hello, reading, link ack after the publish, resend flagged", async (t) => {
  const published: Array<{ subject: string; data: string; dedup: DedupKey | undefined }> = [];
  const { port, acks, counters, ctl, running } = await mockLink(t, "/dev/fake0", (subject, data, dedup) => {
    published.push({ subject, data: Buffer.from(data).toString(), dedup });
    return Promise.resolve({ stream: "UP", seq: published.length, duplicate: false });
  });

  const tlm = { type: FrameType.Telemetry, flags: 0, seq: 2, metric: "temp", value: Buffer.from("21.5") } as const;
  port.port?.emitData(Buffer.concat([encodeFrame({ type: FrameType.Hello, flags: 0, seq: 1, mcu: "m1", board: "uno", firmware: "1", boot: 9 }), encodeFrame(tlm)]));
  await waitFor(() => published.some((p) => p.subject === "up.d1.tlm.mcu.m1.temp"), { timeoutMs: 2000, what: "reading published" });
  const reading = published.find((p) => p.subject === "up.d1.tlm.mcu.m1.temp");
  assert.deepEqual(reading?.dedup, { key: "s:m1/2", boot: 9, retransmit: false });
  assert.equal(reading?.data, "21.5");
  // The online event follows the registry write (an LMDB commit), so it may come after the reading.
  await waitFor(() => published.some((p) => p.subject === "up.d1.evt.mcu.m1.online"), { timeoutMs: 2000, what: "online event" });

  await waitFor(() => acks().some((f) => f.type === FrameType.LinkAck && f.acked === 2), { timeoutMs: 2000, what: "link ack of seq 2" });

  port.port?.emitData(encodeFrame({ ...tlm, flags: FLAG_RETRANSMIT }));
  await waitFor(() => published.filter((p) => p.subject.endsWith(".temp")).length === 2, { timeoutMs: 2000, what: "resend" });
  assert.equal(published.filter((p) => p.subject.endsWith(".temp"))[1]?.dedup?.retransmit, true);

  port.port?.emitData(Buffer.from([0, 9, 9, 9, 0]));
  await waitFor(() => counters.get("serial.bad_cobs") === 1, { timeoutMs: 2000, what: "bad frame counted" });
  assert.equal(counters.get("serial.dropped"), 1);

  ctl.abort();
  await running;
  await waitFor(() => published.some((p) => p.subject === "up.d1.evt.mcu.m1.offline"), { timeoutMs: 2000, what: "offline event" });
});

test("PortLink: a frame refused because the device's disk is full gets LINK_ACK status 2 (keep it, resend later)", async (t) => {
  const { port, acks, ctl, running } = await mockLink(t, "/dev/fake1", (subject) =>
    subject.includes(".tlm.")
      ? Promise.reject(new CanopyError(ErrorCode.DiskFull, "the device's data partition is full: message not stored"))
      : Promise.resolve({ stream: "UP", seq: 1, duplicate: false }),
  );
  port.port?.emitData(Buffer.concat([
    encodeFrame({ type: FrameType.Hello, flags: 0, seq: 1, mcu: "m2", board: "uno", firmware: "1", boot: 3 }),
    encodeFrame({ type: FrameType.Telemetry, flags: 0, seq: 2, metric: "temp", value: Buffer.from("20") }),
  ]));
  const ack = await waitFor(() => acks().find((f) => f.type === FrameType.LinkAck && f.acked === 2), { timeoutMs: 2000, what: "link ack of seq 2" });
  assert.equal(ack.type === FrameType.LinkAck ? ack.status : -1, LINK_ACK_DISK_FULL);
  ctl.abort();
  await running;
});

test("PortLink: frames the bridge missed before a boot's first HELLO, resent right after it (the WHO rule), are stored before the newer ones", async (t) => {
  const published: string[] = [];
  const { port, counters, ctl, running } = await mockLink(t, "/dev/fake2", (subject, data) => {
    if (subject.endsWith(".counter")) published.push(Buffer.from(data).toString());
    return Promise.resolve({ stream: "UP", seq: published.length, duplicate: false });
  });
  const tlm = (seq: number, v: number, flags = 0) => encodeFrame({ type: FrameType.Telemetry, flags, seq, metric: "counter", value: Buffer.from(String(v)) });
  // The MCU booted and sent HELLO 1 and readings 1-2 (seqs 2-3) while the bridge was not reading: lost.
  // Reading 3 (seq 4) arrives before any hello: dropped, and the bridge asks WHO.
  port.port?.emitData(tlm(4, 3));
  await waitFor(() => counters.get("serial.no_hello") === 1, { timeoutMs: 2000, what: "no_hello drop" });
  // The MCU answers the WHO with HELLO 5, then resends everything unacked, oldest first; then reading 4.
  port.port?.emitData(Buffer.concat([
    encodeFrame({ type: FrameType.Hello, flags: 0, seq: 5, mcu: "m2", board: "uno", firmware: "1", boot: 77 }),
    encodeFrame({ type: FrameType.Hello, flags: FLAG_RETRANSMIT, seq: 1, mcu: "m2", board: "uno", firmware: "1", boot: 77 }),
    tlm(2, 1, FLAG_RETRANSMIT), tlm(3, 2, FLAG_RETRANSMIT), tlm(4, 3, FLAG_RETRANSMIT),
    tlm(6, 4),
  ]));
  await waitFor(() => published.length === 4, { timeoutMs: 2000, what: "4 readings published" });
  assert.deepEqual(published, ["1", "2", "3", "4"]);
  ctl.abort();
  await running;
});
