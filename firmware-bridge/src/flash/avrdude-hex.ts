import { FlashError } from "./flasher.js";

export interface HexSummary {
  /** Data bytes in the file (what avrdude will write, before page padding). */
  bytes: number;
  /** One past the highest address written. */
  end: number;
}

/**
 * Checks an Intel HEX image before avrdude sees it (record syntax, checksums, an end record) so a
 * truncated or corrupted download fails as `bad_image` at once instead of half-way through a flash.
 */
export function checkIntelHex(data: Uint8Array): HexSummary {
  const text = Buffer.from(data).toString("latin1");
  let upper = 0;
  let bytes = 0;
  let end = 0;
  let lineNo = 0;
  for (const raw of text.split("\n")) {
    lineNo++;
    const line = raw.trim();
    if (line === "") continue;
    const m = /^:([0-9A-Fa-f]{2})+$/.exec(line);
    if (!m) throw bad(lineNo, "not a HEX record");
    const rec = Buffer.from(line.slice(1), "hex");
    const len = rec[0] ?? 0;
    if (rec.length !== len + 5) throw bad(lineNo, "record length does not match its byte count");
    if (rec.reduce((a, b) => (a + b) & 0xff, 0) !== 0) throw bad(lineNo, "checksum mismatch");
    const addr = ((rec[1] ?? 0) << 8) | (rec[2] ?? 0);
    const type = rec[3];
    if (type === 0) {
      bytes += len;
      end = Math.max(end, upper + addr + len);
    } else if (type === 1) {
      if (bytes === 0) throw bad(lineNo, "no data before the end record");
      return { bytes, end };
    } else if (type === 2 || type === 4) {
      if (len !== 2) throw bad(lineNo, "address record needs 2 bytes");
      const v = ((rec[4] ?? 0) << 8) | (rec[5] ?? 0);
      upper = type === 2 ? v << 4 : v * 0x10000;
    } else if (type !== 3 && type !== 5) {
      throw bad(lineNo, `unknown record type ${type}`);
    }
  }
  throw new FlashError("bad_image", "Intel HEX image has no end record (truncated?)");
}

function bad(line: number, why: string): FlashError {
  return new FlashError("bad_image", `Intel HEX image, line ${line}: ${why}`);
}
