import type { Database } from "lmdb";
import { Backoff, CanopyError, ErrorCode, errorMessage, isValidId, sleep, type BackoffOptions } from "@canopy/protocol";
import type { Counters } from "../counters.js";
import { FrameError } from "../errors.js";
import type { Logger } from "../log.js";
import { checkReadingName, type McuHub, type McuLink, type McuSession } from "../core/hub.js";
import { SerialDecoder, type SerialMode } from "./decoder.js";
import { encodeFrame, FLAG_RETRANSMIT, FrameType, LINK_ACK_DISK_FULL, LINK_ACK_REJECTED, LINK_ACK_STORED, type Frame } from "./frame.js";
import { watchDeviceNode, type SerialConnection, type SerialIo } from "./io.js";
import { commandLine, WHO_LINE, type TextLine } from "./text.js";
import { BootOp } from "../flash/canopy-protocol.js";
import { FrameOrder } from "./order.js";

export interface PortLinkOptions {
  path: string;
  baudRate: number;
  mode: SerialMode;
  maxFrameBytes: number;
  io: SerialIo;
  hub: McuHub;
  counters: Counters;
  log: Logger;
  backoff?: BackoffOptions;
  /** For ports found by a glob: stop (and let the scanner restart us) once the path is gone. */
  stopWhenGone?: boolean;
  exists?: (path: string) => boolean;
  /** Where each MCU's frame-order cursor persists across bridge restarts (LMDB `meta`). */
  meta?: Database<number, string>;
  /** See `OpenOptions.readGapMs`; default READ_GAP_MS. */
  readGapMs?: number;
}

/**
 * A streaming MCU's bytes are read at most every 10 ms. Every read costs a round downstream (an LMDB
 * commit and fsync, a JetStream batch and its ack, a link-ack write); at 921,600 baud a bridge that
 * reads each wake-up did that for every frame or two. The delay is small beside what an ack waits for
 * anyway (the fsync and the stream's ack) and beside the MCU's resend timeout (1 s); a frame on a
 * quiet port is read at once. The cost is throughput for an MCU whose window is small for its line
 * rate: with a window of 32 frames at 921,600 baud the acks come back later and it waits, measured
 * 2,570–2,840 frames/s against 3,150–3,650 reading every wake-up (a window of 128 is not held back).
 * Handing bursts on when the line goes quiet (1–2 ms) instead measured the same.
 */
const READ_GAP_MS = 10;

const enc = new TextEncoder();
/** Text-protocol readings in flight to UP per port; past this a text MCU's lines are dropped (counted). */
const MAX_TEXT_INFLIGHT = 1000;

/**
 * One serial port, supervised: open, read, and on unplug/I-O error reopen with jittered backoff until
 * the signal aborts. A partial frame at the moment of loss is dropped by the decoder; binary frames
 * are link-acked only after UP acked them, and resends reuse their first sequence (no duplicates).
 */
export class PortLink implements McuLink {
  readonly name: string;
  private conn: SerialConnection | undefined;
  private session: McuSession | undefined;
  private boot = 0;
  private txSeq = 0;
  private textInflight = 0;
  private lastWho = 0;
  private readonly orders = new Map<string, FrameOrder>();
  private readonly decoder: SerialDecoder;
  /** Set while a flasher owns the port: the link stays closed until it resolves. */
  private paused: Promise<void> | undefined;

  constructor(private readonly o: PortLinkOptions) {
    this.name = `serial:${o.path}`;
    this.decoder = new SerialDecoder(
      {
        frame: (f) => this.onFrame(f),
        line: (l) => this.onLine(l),
        drop: (reason, detail) => this.drop(reason, detail),
      },
      o.mode,
      o.maxFrameBytes,
    );
  }

  get decoderHighWater(): number {
    return this.decoder.highWater;
  }

  async run(signal: AbortSignal): Promise<void> {
    const log = this.o.log;
    const backoff = new Backoff({ initialMs: 200, maxMs: 5_000, ...this.o.backoff });
    let loggedStep = -1;
    while (!signal.aborted) {
      if (this.paused) await Promise.race([this.paused, new Promise((r) => signal.addEventListener("abort", r, { once: true }))]);
      if (signal.aborted) break;
      let conn: SerialConnection;
      try {
        conn = await this.o.io.open(this.o.path, this.o.baudRate, signal, { readGapMs: this.o.readGapMs ?? READ_GAP_MS });
      } catch (err) {
        if (signal.aborted) break;
        if (this.o.stopWhenGone && this.o.exists && !this.o.exists(this.o.path)) return;
        if (backoff.step !== loggedStep) {
          loggedStep = backoff.step;
          log.warn({ path: this.o.path, err: errorMessage(err), retryMs: backoff.step }, "cannot open serial port");
        }
        await sleep(backoff.next(), signal);
        continue;
      }
      backoff.reset();
      loggedStep = -1;
      log.info({ path: this.o.path, baudRate: this.o.baudRate }, "serial port open");
      const why = await this.serve(conn, signal);
      if (this.paused) continue;
      this.o.counters.inc("serial.disconnects");
      log.warn({ path: this.o.path, err: why ? errorMessage(why) : undefined }, "serial port lost; reconnecting");
      if (!(await sleep(backoff.next(), signal))) break;
    }
  }

  private async serve(conn: SerialConnection, signal: AbortSignal): Promise<Error | undefined> {
    this.conn = conn;
    conn.onData((chunk) => this.decoder.push(chunk));
    const onAbort = (): void => void conn.close();
    signal.addEventListener("abort", onAbort, { once: true });
    // The device node vanishing (unplug) closes the port even if no read is pending to see the error.
    let goneWhy: Error | undefined;
    const unwatch = watchDeviceNode(this.o.path, (why) => {
      goneWhy = why;
      void conn.close();
    });
    this.sendWho(true);
    const why = (await conn.closed) ?? goneWhy;
    unwatch();
    signal.removeEventListener("abort", onAbort);
    this.conn = undefined;
    this.decoder.reset();
    this.session?.detach(signal.aborted ? "bridge stopped" : "unplugged");
    this.session = undefined;
    return why;
  }

  /**
   * Hands the port to a flasher: the link closes it (the MCU shows offline) and reopens it once
   * `resume` is called, when the MCU says hello again (with its new version, or its old one).
   */
  async suspend(): Promise<{ path: string; baudRate: number; resume: () => void }> {
    let resume!: () => void;
    this.paused = new Promise<void>((r) => (resume = r));
    const conn = this.conn;
    if (conn) {
      await conn.close().catch(() => {});
      await conn.closed;
    }
    return {
      path: this.o.path,
      baudRate: this.o.baudRate,
      resume: () => {
        this.paused = undefined;
        resume();
      },
    };
  }

  sendCommand(cmd: { linkId: number; name: string; args: Uint8Array }): Promise<void> {
    const conn = this.conn;
    if (!conn) return Promise.reject(new Error("port is closed"));
    if (this.decoder.currentMode === "binary") {
      const seq = (this.txSeq = (this.txSeq + 1) & 0xffff);
      return conn.write(encodeFrame({ type: FrameType.Command, flags: 0, seq, cmdId: cmd.linkId, name: cmd.name, args: cmd.args }));
    }
    const args = Buffer.from(cmd.args).toString("utf8");
    if (/[\r\n\0]/.test(args)) return Promise.reject(new Error("a text-protocol MCU takes one line of arguments"));
    return conn.write(commandLine(cmd.linkId, cmd.name, args));
  }

  private drop(reason: string, detail: string): void {
    this.o.counters.inc(`serial.${reason}`);
    this.o.counters.inc("serial.dropped");
    this.o.log.debug({ path: this.o.path, reason, detail }, "serial input dropped");
  }

  private sendWho(both = false): void {
    const conn = this.conn;
    if (!conn || Date.now() - this.lastWho < 1_000) return;
    this.lastWho = Date.now();
    const mode = this.decoder.currentMode;
    if (mode !== "text" || both) conn.write(encodeFrame({ type: FrameType.Who, flags: 0, seq: 0 })).catch(() => {});
    if (mode !== "binary" || both) conn.write(`\n${WHO_LINE}`).catch(() => {});
  }

  private identify(mcu: string, board: string, firmware: string, boot: number): boolean {
    if (!isValidId(mcu)) {
      this.drop("invalid_id", `hello with invalid mcu id ${JSON.stringify(String(mcu).slice(0, 70))}`);
      return false;
    }
    if (this.session?.active && this.session.id === mcu && this.boot === boot) return true;
    if (this.session && this.session.id !== mcu) this.session.detach("replaced");
    this.boot = boot;
    this.session = this.o.hub.attach({ id: mcu, board, firmware, link: this.name }, this);
    return true;
  }

  private acks: Buffer[] = [];

  /** Link acks produced in one tick go out in one write (one syscall instead of one per frame). */
  private linkAck(seq: number, status: number): void {
    this.acks.push(encodeFrame({ type: FrameType.LinkAck, flags: 0, seq: 0, acked: seq, status }));
    if (this.acks.length > 1) return;
    setImmediate(() => {
      const batch = Buffer.concat(this.acks);
      this.acks = [];
      this.conn?.write(batch).catch(() => {});
    });
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.Hello) {
      const ok = this.identify(f.mcu, f.board, f.firmware, f.boot);
      if (ok) this.order(f.mcu).hello(f.boot, f.seq);
      this.linkAck(f.seq, ok ? LINK_ACK_STORED : LINK_ACK_REJECTED);
      return;
    }
    if (f.type === FrameType.BootResp && f.op === BootOp.Confirm) {
      // A freshly flashed app still confirming after the flasher gave the port back: ack it too.
      this.conn?.write(encodeFrame({ type: FrameType.Boot, flags: 0, seq: 0, op: BootOp.Confirm, body: new Uint8Array() })).catch(() => {});
      return;
    }
    if (f.type !== FrameType.Telemetry && f.type !== FrameType.Event && f.type !== FrameType.CommandAck) {
      this.drop("unexpected", `frame type ${f.type} from the MCU`);
      return;
    }
    const s = this.session;
    if (!s?.active) {
      this.drop("no_hello", "frame before hello");
      this.sendWho();
      return;
    }
    // A frame whose name can never be stored is refused whatever its place in the order (holding it
    // as "early" would only make the MCU resend it); in order, it still moves the cursor past its seq.
    try {
      if (f.type === FrameType.Telemetry) checkReadingName("telemetry", f.metric);
      else if (f.type === FrameType.Event) checkReadingName("event", f.name);
    } catch (err) {
      const order = this.order(s.id);
      if (order.check(f.seq) === "take") order.settled(f.seq);
      this.drop(err instanceof FrameError ? err.reason : "invalid_id", errorMessage(err));
      this.linkAck(f.seq, LINK_ACK_REJECTED);
      return;
    }
    const order = this.order(s.id);
    if (order.check(f.seq) === "early") {
      // An earlier frame is still to come (its resend): leave this one unacked so the MCU resends it after.
      this.o.counters.inc("serial.out_of_order");
      return;
    }
    const dedup = { key: `s:${s.id}/${f.seq}`, boot: this.boot, retransmit: (f.flags & FLAG_RETRANSMIT) !== 0 };
    let p: Promise<unknown>;
    try {
      if (f.type === FrameType.Telemetry) p = s.telemetry(f.metric, f.value, dedup);
      else if (f.type === FrameType.Event) p = s.event(f.name, f.payload, dedup);
      else p = s.commandAck({ linkId: f.cmdId }, f.status === 0, Buffer.from(f.detail).toString("utf8"));
    } catch (err) {
      order.settled(f.seq);
      this.drop(err instanceof FrameError ? err.reason : "invalid_id", errorMessage(err));
      this.linkAck(f.seq, LINK_ACK_REJECTED);
      return;
    }
    p.then(
      () => {
        order.settled(f.seq);
        this.linkAck(f.seq, LINK_ACK_STORED);
      },
      (err) => {
        this.o.log.debug({ err: errorMessage(err) }, "frame not stored; the MCU will resend");
        if (err instanceof CanopyError && err.code === ErrorCode.DiskFull) {
          order.settled(f.seq);
          this.linkAck(f.seq, LINK_ACK_DISK_FULL);
        }
      },
    );
  }

  private order(mcu: string): FrameOrder {
    let o = this.orders.get(mcu);
    if (!o) {
      if (this.orders.size >= 64) this.orders.clear();
      const onGiveUp = (expected: number, taken: number, waitedMs: number): void => {
        // Frames between the two that come later are stored behind `taken`: worth a warning.
        this.o.counters.inc("serial.gap_given_up");
        this.o.log.warn({ path: this.o.path, mcu, expected, taken, waitedMs }, "serial frames out of order: gave up waiting for a missing frame");
      };
      this.orders.set(mcu, (o = new FrameOrder(this.o.meta, mcu, onGiveUp)));
    }
    return o;
  }

  private onLine(l: TextLine): void {
    if (l.kind === "comment") return;
    if (l.kind === "hello") {
      this.identify(l.mcu, l.board, l.firmware, 0);
      return;
    }
    const s = this.session;
    if (!s?.active) {
      this.drop("no_hello", `${l.kind} line before hello`);
      this.sendWho();
      return;
    }
    if (this.textInflight >= MAX_TEXT_INFLIGHT) {
      this.drop("backlog_full", "UP is not acking fast enough");
      return;
    }
    try {
      let p: Promise<unknown>;
      if (l.kind === "tlm") p = s.telemetry(l.metric, enc.encode(l.value));
      else if (l.kind === "evt") p = s.event(l.name, enc.encode(l.payload));
      else if (l.kind === "log") p = s.event("log", enc.encode(l.text));
      else p = s.commandAck({ linkId: l.cmdId }, l.ok, l.detail);
      this.textInflight++;
      p.finally(() => this.textInflight--).catch(() => {});
    } catch (err) {
      this.drop(err instanceof FrameError ? err.reason : "invalid_id", errorMessage(err));
    }
  }
}
