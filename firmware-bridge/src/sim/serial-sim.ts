import { Backoff, sleep } from "@canopy/protocol";
import { SerialDecoder } from "../serial/decoder.js";
import { encodeFrame, FLAG_RETRANSMIT, FrameType, type Frame } from "../serial/frame.js";
import { BootCodec, BootOp } from "../flash/canopy-protocol.js";
import type { SerialConnection, SerialIo } from "../serial/io.js";
import { periodMs, reading, runCommand, type SimOptions } from "./behaviour.js";
import { SimBootloader } from "./bootloader.js";

export interface SerialSimOptions extends SimOptions {
  path: string;
  baudRate: number;
  binary: boolean;
  io: SerialIo;
  retransmitMs?: number;
  /** Fraction of frames corrupted on the wire, both directions (line noise for tests). */
  corrupt?: number;
  /** Bootloader: time to program one WRITE (real flash takes milliseconds per page). */
  bootWriteMs?: number;
}

type Outstanding = { frame: Frame; sentAt: number };
const enc = new TextEncoder();

/**
 * A microcontroller on a serial port. Binary mode behaves like firmware that must not lose readings:
 * every frame stays in a window until the bridge link-acks it, is resent with the RETX flag after a
 * timeout or a reconnect, and hello is repeated after every (re)connect.
 */
export class SerialSim {
  private conn: SerialConnection | undefined;
  private seq = 0;
  private boot = (Math.random() * 0xffffffff) >>> 0;
  private firmware: string;
  /** Binary-mode MCUs carry the Canopy serial bootloader (PROTOCOL.md part 4). */
  readonly bootloader: SimBootloader;
  private readonly unacked = new Map<number, Outstanding>();
  private produced = 0;
  acked = 0;
  retransmits = 0;
  commands = 0;

  constructor(private readonly o: SerialSimOptions) {
    this.firmware = o.firmware ?? "1.0.0";
    this.bootloader = new SimBootloader(this.firmware, {
      reboot: (version) => {
        this.firmware = version;
        this.boot = (Math.random() * 0xffffffff) >>> 0;
        this.unacked.clear();
        this.hello();
      },
      sendConfirm: (version) => this.writeFrame({ type: FrameType.BootResp, flags: 0, seq: 0, op: BootOp.Confirm, status: 0, body: BootCodec.version(version) }),
      report: (rec) => this.o.report?.(rec),
      bootNonce: () => this.boot,
    }, o.board ?? "sim-rp2040");
  }

  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 100, maxMs: 2_000 });
    const done = new AbortController();
    const stop = AbortSignal.any([signal, done.signal]);
    const producer = this.produce(stop, () => done.abort());
    const retransmitter = this.o.binary ? this.retransmitLoop(stop) : Promise.resolve();
    while (!stop.aborted) {
      try {
        this.conn = await this.o.io.open(this.o.path, this.o.baudRate, stop);
      } catch {
        await sleep(backoff.next(), stop);
        continue;
      }
      backoff.reset();
      const conn = this.conn;
      const decoder = new SerialDecoder(
        { frame: (f) => this.onFrame(f), line: () => {}, drop: () => {} },
        this.o.binary ? "binary" : "text",
      );
      const lines = new LineSplitter((l) => this.onTextLine(l));
      conn.onData((c) => (this.o.binary ? decoder.push(this.noise(c)) : lines.push(c)));
      this.hello();
      if (this.o.binary) for (const out of this.unacked.values()) this.resend(out);
      const onStop = (): void => void conn.close();
      stop.addEventListener("abort", onStop, { once: true });
      await conn.closed;
      stop.removeEventListener("abort", onStop);
      this.conn = undefined;
      this.o.report?.({ event: "link-lost", path: this.o.path });
      await sleep(backoff.next(), stop);
    }
    await producer.catch(() => {});
    await retransmitter.catch(() => {});
    await this.conn?.close();
    this.bootloader.stop();
    this.o.report?.({ event: "done", produced: this.produced, acked: this.acked, retransmits: this.retransmits, commands: this.commands });
  }

  private hello(): void {
    const board = this.o.board ?? "sim-rp2040";
    const fw = this.firmware;
    // Kept until its LINK_ACK like every data frame (PROTOCOL.md): a HELLO lost in an unplug would
    // otherwise leave a hole in the seq order that the bridge waits out (10 s) before going on.
    if (this.o.binary) this.send({ type: FrameType.Hello, flags: 0, seq: this.nextSeq(), mcu: this.o.id, board, firmware: fw, boot: this.boot });
    else this.write(`hello ${this.o.id} ${board} ${fw}\n`);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 0xffff;
    return this.seq;
  }

  private write(data: Uint8Array | string): void {
    this.conn?.write(typeof data === "string" ? data : this.noise(data)).catch(() => {});
  }

  private writeFrame(f: Frame): void {
    this.write(encodeFrame(f));
  }

  /** With --corrupt p: flips one byte of a frame (or read chunk) with probability p; CRC catches it. */
  private noise<T extends Uint8Array>(data: T): T {
    const p = this.o.corrupt ?? 0;
    if (p <= 0 || Math.random() >= p || data.length < 3) return data;
    const copy = Uint8Array.from(data) as T;
    const i = 1 + Math.floor(Math.random() * (copy.length - 2));
    copy[i] = ((copy[i] as number) ^ 0x5a) || 0x01;
    return copy;
  }

  private async produce(signal: AbortSignal, finished: () => void): Promise<void> {
    const period = periodMs(this.o.rate);
    const window = this.o.window ?? 32;
    let next = Date.now();
    while (!signal.aborted && (this.o.count === undefined || this.produced < this.o.count)) {
      if (!this.conn || (this.o.binary && this.unacked.size >= window)) {
        await sleep(2, signal);
        continue;
      }
      const { metric, value } = reading(++this.produced);
      if (this.o.binary) this.send({ type: FrameType.Telemetry, flags: 0, seq: this.nextSeq(), metric, value: enc.encode(value) });
      else this.write(`tlm ${metric} ${value}\n`);
      if (period > 0) {
        next += period;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait, signal);
      } else if (this.produced % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    if (this.o.count === undefined) return;
    // Text mode cannot know what arrived; binary mode waits until the bridge acked everything.
    while (!signal.aborted && this.o.binary && this.unacked.size > 0) await sleep(5, signal);
    if (!this.o.binary) this.acked = this.produced;
    finished();
  }

  private send(frame: Frame): void {
    this.unacked.set(frame.seq, { frame, sentAt: Date.now() });
    this.write(encodeFrame(frame));
  }

  private resend(out: Outstanding): void {
    out.sentAt = Date.now();
    this.retransmits++;
    this.write(encodeFrame({ ...out.frame, flags: out.frame.flags | FLAG_RETRANSMIT }));
  }

  private async retransmitLoop(signal: AbortSignal): Promise<void> {
    const after = this.o.retransmitMs ?? 1_000;
    while (await sleep(after / 4, signal)) {
      if (!this.conn) continue;
      const now = Date.now();
      for (const out of this.unacked.values()) if (now - out.sentAt >= after) this.resend(out);
    }
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.LinkAck) {
      const out = this.unacked.get(f.acked);
      // `acked` counts readings: a HELLO is kept until acked too, but it is not one.
      if (out && this.unacked.delete(f.acked) && f.status === 0 && out.frame.type !== FrameType.Hello) this.acked++;
    } else if (f.type === FrameType.Who) {
      // The bridge asking may not have seen this boot (it just started, or it dropped frames that came
      // before a hello it missed): it takes the boot's frames from this HELLO on, so everything still
      // unacked is resent right after it, oldest first, ahead of any new frame (PROTOCOL.md, MCU rules).
      const older = [...this.unacked.values()];
      this.hello();
      if (this.o.binary) for (const out of older) this.resend(out);
    } else if (f.type === FrameType.Boot) {
      const r = this.bootloader.handle(f.op, f.body);
      if (f.op === BootOp.Confirm) return;
      const reply = (): void => this.writeFrame({ type: FrameType.BootResp, flags: 0, seq: f.seq, op: r.op, status: r.status, body: r.body });
      if (f.op === BootOp.Write && this.o.bootWriteMs) setTimeout(reply, this.o.bootWriteMs);
      else reply();
    } else if (f.type === FrameType.Command) {
      this.commands++;
      const r = runCommand(f.name, Buffer.from(f.args).toString("utf8"));
      this.o.report?.({ event: "command", name: f.name, ok: r.ok });
      this.send({ type: FrameType.CommandAck, flags: 0, seq: this.nextSeq(), cmdId: f.cmdId, status: r.ok ? 0 : 1, detail: enc.encode(r.detail) });
    }
  }

  private onTextLine(line: string): void {
    if (line === "who") return this.hello();
    const m = /^cmd (\d+) ([A-Za-z0-9_-]+)(?: (.*))?$/.exec(line);
    if (!m) return;
    this.commands++;
    const r = runCommand(m[2] as string, m[3] ?? "");
    this.o.report?.({ event: "command", name: m[2], ok: r.ok });
    this.write(`ack ${m[1]} ${r.ok ? "ok" : "err"} ${r.detail}\n`);
  }
}

class LineSplitter {
  private buf = "";
  constructor(private readonly onLine: (l: string) => void) {}
  push(chunk: Buffer): void {
    this.buf += chunk.toString("latin1");
    let i: number;
    while ((i = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, "");
      this.buf = this.buf.slice(i + 1);
      if (line) this.onLine(line);
    }
    if (this.buf.length > 4096) this.buf = "";
  }
}

