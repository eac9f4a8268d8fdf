import { FrameError } from "../errors.js";

/**
 * Consistent Overhead Byte Stuffing: the encoded form never contains 0x00, so 0x00 delimits frames
 * and a receiver that joins mid-stream resynchronises at the next delimiter.
 */
export function cobsEncode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length + Math.ceil(src.length / 254) + 1);
  let codeIdx = 0;
  let code = 1;
  let o = 1;
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === 0) {
      out[codeIdx] = code;
      codeIdx = o++;
      code = 1;
    } else {
      out[o++] = b;
      code++;
      if (code === 0xff) {
        out[codeIdx] = code;
        codeIdx = o++;
        code = 1;
      }
    }
  }
  out[codeIdx] = code;
  return out.subarray(0, o);
}

/** Decodes one frame (delimiters already stripped). Throws `FrameError("bad_cobs")` on a bad escape. */
export function cobsDecode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  let i = 0;
  let o = 0;
  while (i < src.length) {
    const code = src[i] as number;
    if (code === 0) throw new FrameError("bad_cobs", "COBS frame contains a zero byte");
    i++;
    const end = i + code - 1;
    if (end > src.length) throw new FrameError("bad_cobs", `COBS code ${code} runs past the frame end`);
    for (; i < end; i++) {
      const b = src[i] as number;
      if (b === 0) throw new FrameError("bad_cobs", "COBS frame contains a zero byte");
      out[o++] = b;
    }
    if (code !== 0xff && i < src.length) out[o++] = 0;
  }
  return out.subarray(0, o);
}
