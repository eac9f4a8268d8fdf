import { FrameError } from "../errors.js";
import { decodeWireFrame, FrameType, type Frame } from "./frame.js";
import { parseLine, type TextLine } from "./text.js";

export type SerialMode = "auto" | "text" | "binary";

export interface DecoderSink {
  frame(f: Frame): void;
  line(l: TextLine): void;
  /** A dropped frame or line; `reason` becomes counter `serial.<reason>`. */
  drop(reason: string, detail: string): void;
}

/** Collects bytes up to a delimiter; never holds more than `cap` bytes (longer runs are skipped). */
class Splitter {
  private readonly buf: Uint8Array;
  private len = 0;
  private skipping = false;
  highWater = 0;

  constructor(private readonly delim: number, private readonly cap: number) {
    this.buf = new Uint8Array(cap);
  }

  /** Returns the completed chunk, "oversize" once per over-long run, or undefined. */
  push(b: number): Uint8Array | "oversize" | undefined {
    if (b === this.delim) {
      const was = this.skipping;
      this.skipping = false;
      if (was || this.len === 0) return undefined;
      const out = this.buf.slice(0, this.len);
      this.len = 0;
      return out;
    }
    if (this.skipping) return undefined;
    if (this.len >= this.cap) {
      this.skipping = true;
      this.len = 0;
      return "oversize";
    }
    this.buf[this.len++] = b;
    if (this.len > this.highWater) this.highWater = this.len;
    return undefined;
  }

  /** Discards a partial chunk; returns how many bytes it held. */
  reset(): number {
    const n = this.skipping ? 0 : this.len;
    this.len = 0;
    this.skipping = false;
    return n;
  }
}

/**
 * Splits a serial byte stream into binary frames (0x00-delimited COBS) or text lines (`\n`). Memory is
 * bounded: each splitter holds at most `maxFrameBytes` (+ COBS overhead); a longer frame or line is
 * dropped once (`oversize`) and skipped to the next delimiter.
 *
 * In `auto` mode both splitters watch the stream; the first valid frame or line picks the protocol,
 * and a valid *hello* in the other protocol switches (another sketch was flashed, another MCU plugged
 * into the same pty). Drops are counted only for the protocol in use.
 */
export class SerialDecoder {
  private mode: "undecided" | "text" | "binary";
  private readonly bin: Splitter | undefined;
  private readonly txt: Splitter | undefined;

  constructor(
    private readonly sink: DecoderSink,
    private readonly initialMode: SerialMode = "auto",
    readonly maxFrameBytes = 1024,
  ) {
    this.mode = initialMode === "auto" ? "undecided" : initialMode;
    if (initialMode !== "text") this.bin = new Splitter(0, maxFrameBytes + Math.ceil(maxFrameBytes / 254) + 1);
    if (initialMode !== "binary") this.txt = new Splitter(0x0a, maxFrameBytes);
  }

  get currentMode(): SerialMode {
    return this.mode === "undecided" ? "auto" : this.mode;
  }

  /** Highest number of bytes ever buffered: property tests check it never passes the cap. */
  get highWater(): number {
    return Math.max(this.bin?.highWater ?? 0, this.txt?.highWater ?? 0);
  }

  /** The link dropped: a buffered partial frame is discarded and counted. */
  reset(): void {
    const b = this.bin?.reset() ?? 0;
    const t = this.txt?.reset() ?? 0;
    const n = this.mode === "binary" ? b : this.mode === "text" ? t : 0;
    if (n > 0) this.sink.drop("partial", `${n} bytes of a partial frame discarded`);
    this.mode = this.initialMode === "auto" ? "undecided" : this.initialMode;
  }

  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.bin) {
        const r = this.bin.push(b);
        if (r !== undefined) this.onBinary(r);
      }
      if (this.txt) {
        const r = this.txt.push(b);
        if (r !== undefined) this.onText(r);
      }
    }
  }

  private onBinary(r: Uint8Array | "oversize"): void {
    const active = this.mode === "binary";
    if (r === "oversize") {
      if (active) this.sink.drop("oversize", `frame over ${this.maxFrameBytes} bytes`);
      return;
    }
    let f: Frame;
    try {
      f = decodeWireFrame(r);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      if (active) this.sink.drop(err.reason, err.message);
      return;
    }
    if (!active) {
      if (this.mode === "text" && f.type !== FrameType.Hello) return;
      this.mode = "binary";
      this.txt?.reset();
    }
    this.sink.frame(f);
  }

  private onText(r: Uint8Array | "oversize"): void {
    const active = this.mode === "text";
    if (r === "oversize") {
      if (active) this.sink.drop("oversize", `line over ${this.maxFrameBytes} bytes`);
      return;
    }
    let l: TextLine;
    try {
      l = parseLine(r);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      if (active) this.sink.drop(err.reason, err.message);
      return;
    }
    if (!active) {
      if (l.kind === "comment" || (this.mode === "binary" && l.kind !== "hello")) return;
      this.mode = "text";
      this.bin?.reset();
    }
    this.sink.line(l);
  }
}
