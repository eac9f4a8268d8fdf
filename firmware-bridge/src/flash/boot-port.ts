import { sleep } from "@canopy/protocol";
import { SerialDecoder } from "../serial/decoder.js";
import { encodeFrame, FrameType, LINK_ACK_STORED, type Frame } from "../serial/frame.js";
import type { SerialConnection, SerialIo } from "../serial/io.js";
import { BootCodec, BootOp } from "./canopy-protocol.js";
import { FlashError } from "./flasher.js";

type BootResp = Extract<Frame, { type: 9 }>;

/** What the MCU said on its own while we waited: a (re)boot hello, or the new app's CONFIRM. */
export type Unsolicited = { kind: "hello"; version: string } | { kind: "confirm"; version: string };

/**
 * The flasher's own session on a serial port (the bridge's link for that port is suspended meanwhile):
 * request/response over BOOT/BOOT_RESP frames with a per-request timeout and resends (a lost or
 * corrupted frame costs one timeout, never the flash), plus the hellos and CONFIRMs the MCU sends.
 */
export class BootPort {
  private conn: SerialConnection | undefined;
  /** The request in flight: its op and the seq of every copy sent (an answer to any copy will do). */
  private waiter: { op: number; seqs: Set<number>; resolve: (f: BootResp) => void } | undefined;
  private readonly events: Unsolicited[] = [];
  private eventWake: (() => void) | undefined;
  private seq = 0;
  private activated = false;
  private readonly staleBoots = new Set<number>();
  framesSent = 0;

  constructor(private readonly io: SerialIo, private readonly path: string, private readonly baud: number) {}

  get open(): boolean {
    return this.conn !== undefined;
  }

  /** Opens the port, retrying until `signal` aborts (the pty may be gone for a while). */
  async connect(signal: AbortSignal): Promise<void> {
    let lastErr: unknown;
    while (!signal.aborted) {
      try {
        const conn = await this.io.open(this.path, this.baud, signal);
        const decoder = new SerialDecoder({ frame: (f) => this.onFrame(f), line: () => {}, drop: () => {} }, "binary");
        conn.onData((c) => decoder.push(c));
        this.conn = conn;
        void conn.closed.then(() => {
          if (this.conn === conn) this.conn = undefined;
          this.eventWake?.();
        });
        return;
      } catch (err) {
        lastErr = err;
        await sleep(200, signal);
      }
    }
    const why = lastErr === undefined ? "" : `: ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`;
    throw new FlashError(signal.reason === "cancelled" ? "cancelled" : "timeout", `could not open ${this.path}${why}`);
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    await c?.close().catch(() => {});
  }

  /**
   * One request; resent on timeout. Rejects with no_response after `tries`, or when the port closes.
   * Answers are matched by seq: the device echoes the request's seq in BOOT_RESP, so a late answer to
   * an earlier request (a WRITE that timed out and was resent) is never taken for this one's.
   */
  async request(op: number, body: Uint8Array, signal: AbortSignal, timeoutMs = 400, tries = 25): Promise<BootResp> {
    const seqs = new Set<number>();
    for (let i = 0; i < tries; i++) {
      const conn = this.conn;
      if (!conn) throw new FlashError("no_response", "port closed");
      if (signal.aborted) throw new FlashError("timeout", "deadline passed");
      const got = new Promise<BootResp | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), timeoutMs);
        this.waiter = { op, seqs, resolve: (f) => (clearTimeout(timer), resolve(f)) };
        void conn.closed.then(() => (clearTimeout(timer), resolve(undefined)));
      });
      const seq = this.nextSeq();
      seqs.add(seq);
      this.send({ type: FrameType.Boot, flags: 0, seq, op, body });
      const f = await got;
      this.waiter = undefined;
      if (f) return f;
    }
    throw new FlashError("no_response", `no answer to bootloader op ${op} after ${tries} tries`);
  }

  /** The next hello / confirm the MCU sends, or undefined once `signal` aborts or the port closes. */
  async nextEvent(signal: AbortSignal): Promise<Unsolicited | undefined> {
    while (this.events.length === 0) {
      if (signal.aborted || !this.conn) return undefined;
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        this.eventWake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
      this.eventWake = undefined;
    }
    return this.events.shift();
  }

  /**
   * The boot running now (INFO's nonce): its hellos are not news of the reboot after ACTIVATE, even
   * one we first see after ACTIVATE. The MCU resends an unacked hello about once a second, so a hello
   * lost while the port was reopened can arrive just after ACTIVATE; without this it read as the new
   * boot coming up with the old version (a false `rolled_back`).
   */
  runningBoot(nonce: number): void {
    this.staleBoots.add(nonce);
  }

  /** From now on only hellos of a new boot (and CONFIRMs) are events. */
  activate(): void {
    this.activated = true;
    this.events.length = 0;
  }

  ackConfirm(): void {
    this.send({ type: FrameType.Boot, flags: 0, seq: this.nextSeq(), op: BootOp.Confirm, body: new Uint8Array() });
  }

  /** 1…65535: seq 0 marks the device's unsolicited CONFIRM, never an answer. */
  private nextSeq(): number {
    this.seq = (this.seq % 0xffff) + 1;
    return this.seq;
  }

  private send(f: Frame): void {
    this.framesSent++;
    this.conn?.write(encodeFrame(f)).catch(() => {});
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.BootResp) {
      if (f.op === BootOp.Confirm) return this.push({ kind: "confirm", version: safe(() => BootCodec.parseVersion(f.body)) });
      const w = this.waiter;
      if (w && w.op === f.op && w.seqs.has(f.seq)) w.resolve(f);
      return;
    }
    if (f.type === FrameType.Hello) {
      // Ack it (not stored: the bridge's link says hello again when it reopens), so it is not resent.
      this.send({ type: FrameType.LinkAck, flags: 0, seq: 0, acked: f.seq, status: LINK_ACK_STORED });
      // Every boot says hello with a fresh nonce: hellos of boots seen before ACTIVATE (a reopened
      // port, a resend) are not news of the reboot we wait for.
      if (!this.activated) this.staleBoots.add(f.boot);
      else if (!this.staleBoots.has(f.boot)) this.push({ kind: "hello", version: f.firmware });
    }
    // Readings are left unacked: the MCU resends them to the bridge once it has the port back.
  }

  private push(e: Unsolicited): void {
    this.events.push(e);
    if (this.events.length > 64) this.events.shift();
    this.eventWake?.();
  }
}

function safe(f: () => string): string {
  try {
    return f();
  } catch {
    return "";
  }
}
