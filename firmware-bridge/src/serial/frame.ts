import { FrameError } from "../errors.js";
import { cobsDecode, cobsEncode } from "./cobs.js";
import { crc16 } from "./crc16.js";

/**
 * The binary serial protocol (PROTOCOL.md, part 2). Decoded frame layout, all integers big-endian:
 *
 *   type u8 | flags u8 | seq u16 | body … | crc16 u16   (CRC-16/CCITT-FALSE over type..body)
 *
 * On the wire: 0x00, COBS(frame), 0x00. The leading delimiter flushes any partial frame the receiver
 * holds (e.g. after an unplug), so a half frame can never be glued to the next one.
 */
export const FrameType = {
  Hello: 1,
  Telemetry: 2,
  Event: 3,
  Command: 4,
  CommandAck: 5,
  LinkAck: 6,
  Who: 7,
  /** Canopy bootloader request / response (PROTOCOL.md part 4): u8 op + op body. */
  Boot: 8,
  BootResp: 9,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FLAG_RETRANSMIT = 0x01;
/** LinkAck status: 0 = stored in UP, 1 = rejected for good (bad metric, reserved name): do not resend. */
export const LINK_ACK_STORED = 0;
export const LINK_ACK_REJECTED = 1;
/** Not stored: the device's data partition is full. The MCU keeps the frame and resends it later. */
export const LINK_ACK_DISK_FULL = 2;
export const HEADER_BYTES = 4;
export const CRC_BYTES = 2;

export type Frame =
  | { type: 1; flags: number; seq: number; mcu: string; board: string; firmware: string; boot: number }
  | { type: 2; flags: number; seq: number; metric: string; value: Uint8Array }
  | { type: 3; flags: number; seq: number; name: string; payload: Uint8Array }
  | { type: 4; flags: number; seq: number; cmdId: number; name: string; args: Uint8Array }
  | { type: 5; flags: number; seq: number; cmdId: number; status: number; detail: Uint8Array }
  | { type: 6; flags: number; seq: number; acked: number; status: number }
  | { type: 7; flags: number; seq: number }
  | { type: 8; flags: number; seq: number; op: number; body: Uint8Array }
  | { type: 9; flags: number; seq: number; op: number; status: number; body: Uint8Array };

const ascii = new TextDecoder("latin1");

class Reader {
  private pos = HEADER_BYTES;
  constructor(private readonly buf: Uint8Array, private readonly end: number) {}
  u8(): number {
    if (this.pos + 1 > this.end) throw new FrameError("bad_frame", "frame body too short");
    return this.buf[this.pos++] as number;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u32(): number {
    return ((this.u16() << 16) | this.u16()) >>> 0;
  }
  /** u8 length + printable ASCII (ids, metric paths, board names). */
  str(): string {
    const n = this.u8();
    if (this.pos + n > this.end) throw new FrameError("bad_frame", "string runs past the frame end");
    for (let i = this.pos; i < this.pos + n; i++) {
      const c = this.buf[i] as number;
      if (c < 0x20 || c > 0x7e) throw new FrameError("bad_frame", "non-printable byte in a string field");
    }
    const s = ascii.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  rest(): Uint8Array {
    const r = this.buf.slice(this.pos, this.end);
    this.pos = this.end;
    return r;
  }
}

/** Parses a decoded (un-COBSed) frame. Throws `FrameError` with reason `too_short|bad_crc|bad_frame`. */
export function parseFrame(raw: Uint8Array): Frame {
  if (raw.length < HEADER_BYTES + CRC_BYTES) throw new FrameError("too_short", `frame of ${raw.length} bytes`);
  const end = raw.length - CRC_BYTES;
  const want = ((raw[end] as number) << 8) | (raw[end + 1] as number);
  if (crc16(raw, 0, end) !== want) throw new FrameError("bad_crc", "CRC mismatch");
  const type = raw[0] as number;
  const flags = raw[1] as number;
  const seq = ((raw[2] as number) << 8) | (raw[3] as number);
  const r = new Reader(raw, end);
  let f: Frame;
  switch (type) {
    case FrameType.Hello:
      f = { type, flags, seq, mcu: r.str(), board: r.str(), firmware: r.str(), boot: r.u32() };
      break;
    case FrameType.Telemetry:
      f = { type, flags, seq, metric: r.str(), value: r.rest() };
      break;
    case FrameType.Event:
      f = { type, flags, seq, name: r.str(), payload: r.rest() };
      break;
    case FrameType.Command:
      f = { type, flags, seq, cmdId: r.u16(), name: r.str(), args: r.rest() };
      break;
    case FrameType.CommandAck:
      f = { type, flags, seq, cmdId: r.u16(), status: r.u8(), detail: r.rest() };
      break;
    case FrameType.LinkAck:
      f = { type, flags, seq, acked: r.u16(), status: r.u8() };
      break;
    case FrameType.Who:
      f = { type, flags, seq };
      break;
    case FrameType.Boot:
      f = { type, flags, seq, op: r.u8(), body: r.rest() };
      break;
    case FrameType.BootResp:
      f = { type, flags, seq, op: r.u8(), status: r.u8(), body: r.rest() };
      break;
    default:
      throw new FrameError("bad_frame", `unknown frame type ${type}`);
  }
  if (r.rest().length !== 0) throw new FrameError("bad_frame", "trailing bytes after the frame body");
  return f;
}

class Writer {
  private readonly parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v & 0xffff);
  }
  str(s: string): this {
    const b = Buffer.from(s, "latin1");
    if (b.length > 255) throw new FrameError("bad_frame", "string field over 255 bytes");
    this.u8(b.length);
    for (const c of b) this.parts.push(c);
    return this;
  }
  bytes(b: Uint8Array): this {
    for (const c of b) this.parts.push(c);
    return this;
  }
  done(): Uint8Array {
    const body = Uint8Array.from(this.parts);
    const out = new Uint8Array(body.length + CRC_BYTES);
    out.set(body);
    const c = crc16(body);
    out[body.length] = c >> 8;
    out[body.length + 1] = c & 0xff;
    return out;
  }
}

/** Builds the decoded frame bytes (header, body, CRC). */
export function buildFrame(f: Frame): Uint8Array {
  const w = new Writer().u8(f.type).u8(f.flags).u16(f.seq);
  switch (f.type) {
    case 1:
      w.str(f.mcu).str(f.board).str(f.firmware).u32(f.boot);
      break;
    case 2:
      w.str(f.metric).bytes(f.value);
      break;
    case 3:
      w.str(f.name).bytes(f.payload);
      break;
    case 4:
      w.u16(f.cmdId).str(f.name).bytes(f.args);
      break;
    case 5:
      w.u16(f.cmdId).u8(f.status).bytes(f.detail);
      break;
    case 6:
      w.u16(f.acked).u8(f.status);
      break;
    case 7:
      break;
    case 8:
      w.u8(f.op).bytes(f.body);
      break;
    case 9:
      w.u8(f.op).u8(f.status).bytes(f.body);
      break;
  }
  return w.done();
}

/** Wire bytes: 0x00 COBS(frame) 0x00. */
export function encodeFrame(f: Frame): Buffer {
  return wrapCobs(buildFrame(f));
}

export function wrapCobs(raw: Uint8Array): Buffer {
  const enc = cobsEncode(raw);
  const out = Buffer.alloc(enc.length + 2);
  out.set(enc, 1);
  return out;
}

/** Decodes the bytes between two delimiters. */
export function decodeWireFrame(encoded: Uint8Array): Frame {
  return parseFrame(cobsDecode(encoded));
}
