import { FrameError } from "../errors.js";

/**
 * Body codecs of the Canopy serial bootloader protocol (PROTOCOL.md part 4), carried in BOOT (type 8,
 * Pi → MCU: `u8 op | body`) and BOOT_RESP (type 9, MCU → Pi: `u8 op | u8 status | body`) frames of
 * the binary link. Shared by the host flasher and the simulated bootloader.
 */
export const BootOp = { Info: 1, Begin: 2, Write: 3, Finish: 4, Activate: 5, Confirm: 6 } as const;
export const BootStatus = { Ok: 0, NakOffset: 1, BadHash: 2, TooBig: 3, BadState: 4 } as const;
/** Image bytes per WRITE: keeps a frame well under the 1,024-byte link cap. */
export const WRITE_CHUNK = 512;

export interface BootInfo {
  board: string;
  version: string;
  sha256: string;
  maxChunk: number;
  maxImage: number;
  /**
   * The running boot's nonce, as its HELLOs carry it (optional trailing field: older bootloaders end
   * the body at max-image). The flasher needs it to tell that boot's hellos from the new image's.
   */
  boot?: number;
}

class Out {
  private readonly parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v & 0xffff);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, "latin1").subarray(0, 255);
    return this.u8(b.length).raw(b);
  }
  hash(hex: string): this {
    const b = Buffer.alloc(32);
    if (/^[0-9a-f]{64}$/.test(hex)) Buffer.from(hex, "hex").copy(b);
    return this.raw(b);
  }
  raw(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  done(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

class In {
  private pos = 0;
  constructor(private readonly b: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.b.length) throw new FrameError("bad_frame", "boot body too short");
  }
  u8(): number {
    this.need(1);
    return this.b.readUInt8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  str(): string {
    const n = this.u8();
    this.need(n);
    const s = this.b.toString("latin1", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  hash(): string {
    this.need(32);
    const s = this.b.toString("hex", this.pos, this.pos + 32);
    this.pos += 32;
    return s;
  }
  rest(): Buffer {
    const r = this.b.subarray(this.pos);
    this.pos = this.b.length;
    return r;
  }
}

const inp = (b: Uint8Array): In => new In(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

export const BootCodec = {
  info: (i: BootInfo): Uint8Array => {
    const o = new Out().str(i.board).str(i.version).hash(i.sha256).u16(i.maxChunk).u32(i.maxImage);
    return (i.boot === undefined ? o : o.u32(i.boot)).done();
  },
  parseInfo: (b: Uint8Array): BootInfo => {
    const r = inp(b);
    const info: BootInfo = { board: r.str(), version: r.str(), sha256: r.hash(), maxChunk: r.u16(), maxImage: r.u32() };
    const rest = r.rest();
    return rest.length >= 4 ? { ...info, boot: rest.readUInt32BE(0) } : info;
  },
  begin: (sha256: string, size: number, version: string): Uint8Array => new Out().hash(sha256).u32(size).str(version).done(),
  parseBegin: (b: Uint8Array): { sha256: string; size: number; version: string } => {
    const r = inp(b);
    return { sha256: r.hash(), size: r.u32(), version: r.str() };
  },
  write: (offset: number, data: Uint8Array): Uint8Array => new Out().u32(offset).raw(data).done(),
  parseWrite: (b: Uint8Array): { offset: number; data: Buffer } => {
    const r = inp(b);
    return { offset: r.u32(), data: r.rest() };
  },
  /** BEGIN's resume offset, WRITE's next expected offset. */
  offset: (n: number): Uint8Array => new Out().u32(n).done(),
  parseOffset: (b: Uint8Array): number => inp(b).u32(),
  hash: (hex: string): Uint8Array => new Out().hash(hex).done(),
  parseHash: (b: Uint8Array): string => inp(b).hash(),
  activate: (trial: boolean, confirmWithinMs: number): Uint8Array => new Out().u8(trial ? 1 : 0).u32(confirmWithinMs).done(),
  parseActivate: (b: Uint8Array): { trial: boolean; confirmWithinMs: number } => {
    const r = inp(b);
    return { trial: r.u8() === 1, confirmWithinMs: r.u32() };
  },
  version: (v: string): Uint8Array => new Out().str(v).done(),
  parseVersion: (b: Uint8Array): string => inp(b).str(),
};
