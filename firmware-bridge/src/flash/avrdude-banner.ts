import { sleep } from "@canopy/protocol";
import type { SerialIo } from "../serial/io.js";
import { parseLine, WHO_LINE } from "../serial/text.js";

export interface Banner {
  mcu: string;
  board: string;
  version: string;
}

const MAX_LINE = 256;

/**
 * After a flash, listens on the port for the application's `hello <mcu> <board> <version>` line
 * (PROTOCOL.md part 1) and asks for it with `who` every `askEveryMs`, because the banner printed at
 * boot may be gone by the time the port is open again. Resolves undefined when `windowMs` passes
 * without one; rejects with the signal's reason when aborted. The port is always closed on return.
 */
export async function watchBanner(opts: {
  io: SerialIo;
  port: string;
  baud: number;
  windowMs: number;
  signal: AbortSignal;
  askEveryMs?: number;
}): Promise<Banner | undefined> {
  const conn = await opts.io.open(opts.port, opts.baud, opts.signal);
  const done = new AbortController();
  const stopAll = (): void => done.abort();
  opts.signal.addEventListener("abort", stopAll, { once: true });
  try {
    let found: Banner | undefined;
    let buf = Buffer.alloc(0);
    conn.onData((chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a)) {
        const line = buf.subarray(0, i);
        buf = buf.subarray(i + 1);
        const hello = helloOf(line);
        if (hello && !found) {
          found = hello;
          done.abort();
        }
      }
      // Bootloader chatter has no newlines: bound what is kept.
      if (buf.length > MAX_LINE) buf = buf.subarray(buf.length - MAX_LINE);
    });
    void conn.closed.then(() => done.abort());
    const until = Date.now() + opts.windowMs;
    while (!done.signal.aborted && Date.now() < until) {
      await conn.write(WHO_LINE).catch(() => undefined);
      await sleep(Math.min(opts.askEveryMs ?? 500, Math.max(0, until - Date.now())), done.signal);
    }
    if (opts.signal.aborted) throw opts.signal.reason;
    return found;
  } finally {
    opts.signal.removeEventListener("abort", stopAll);
    await conn.close();
  }
}

function helloOf(bytes: Buffer): Banner | undefined {
  // The line may start with bootloader bytes that were still in the buffer: parse from "hello ".
  const at = bytes.indexOf("hello ");
  if (at < 0) return undefined;
  try {
    const l = parseLine(bytes.subarray(at));
    return l.kind === "hello" ? { mcu: l.mcu, board: l.board, version: l.firmware } : undefined;
  } catch {
    return undefined; // bootloader bytes, a half line from before the reset
  }
}
