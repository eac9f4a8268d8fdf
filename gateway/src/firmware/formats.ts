import { CanopyError, ErrorCode, type FirmwareFormat } from "@canopy/protocol";

/** Refuses an image that does not parse as its declared format (before anything is uploaded). */
export function checkFormat(data: Uint8Array, format: FirmwareFormat): void {
  if (data.length === 0) throw bad(format, "the file is empty");
  if (format === "uf2") return checkUf2(data);
  if (format === "hex" || format === "avr-hex") return checkIntelHex(Buffer.from(data).toString("latin1"), format);
}

const UF2_MAGIC0 = 0x0a324655;
const UF2_MAGIC1 = 0x9e5d5157;
const UF2_END = 0x0ab16f30;

function checkUf2(data: Uint8Array): void {
  if (data.length % 512 !== 0) throw bad("uf2", `size ${data.length} is not a multiple of 512-byte blocks`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let off = 0; off < data.length; off += 512) {
    if (v.getUint32(off, true) !== UF2_MAGIC0 || v.getUint32(off + 4, true) !== UF2_MAGIC1 || v.getUint32(off + 508, true) !== UF2_END) {
      throw bad("uf2", `block ${off / 512} has bad magic numbers`);
    }
  }
}

function checkIntelHex(text: string, format: FirmwareFormat): void {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  let sawEof = false;
  for (const [i, line] of lines.entries()) {
    if (sawEof) throw bad(format, `line ${i + 1}: data after the end-of-file record`);
    if (!/^:([0-9A-Fa-f]{2}){5,}$/.test(line)) throw bad(format, `line ${i + 1} is not an Intel HEX record`);
    const bytes = Buffer.from(line.slice(1), "hex");
    const len = bytes[0] as number;
    if (bytes.length !== len + 5) throw bad(format, `line ${i + 1}: length byte says ${len}, record holds ${bytes.length - 5}`);
    const sum = bytes.reduce((a, b) => (a + b) & 0xff, 0);
    if (sum !== 0) throw bad(format, `line ${i + 1}: checksum mismatch`);
    const type = bytes[3] as number;
    if (type > 5) throw bad(format, `line ${i + 1}: unknown record type ${type}`);
    if (type === 1) sawEof = true;
  }
  if (!sawEof) throw bad(format, "no end-of-file record (:00000001FF)");
}

function bad(format: FirmwareFormat, why: string): CanopyError {
  return new CanopyError(ErrorCode.InvalidInput, `not a valid ${format} image: ${why}`);
}
