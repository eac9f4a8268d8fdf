import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SerialDecoder } from "../serial/decoder.js";
import { encodeFrame, FrameType } from "../serial/frame.js";
import type { SerialConnection, SerialIo } from "../serial/io.js";
import { SimBootloader } from "../sim/bootloader.js";
import { BootPort } from "./boot-port.js";
import { BootCodec, BootOp, BootStatus } from "./canopy-protocol.js";

/**
 * A sim bootloader behind the SerialIo seam whose WRITE answers come late (flash programming time):
 * `delayFor(n)` is the delay of the n-th WRITE answer. Answers echo the request's seq, as PROTOCOL.md says.
 */
function slowDevice(delayFor: (n: number) => number): SerialIo & { bl: SimBootloader } {
  const bl = new SimBootloader("1.0.0", { reboot: () => {}, sendConfirm: () => {}, report: () => {} }, "rp2040");
  let writes = 0;
  return {
    bl,
    open(path: string): Promise<SerialConnection> {
      let cb: ((b: Buffer) => void) | undefined;
      const closed = new Promise<undefined>(() => {});
      const dec = new SerialDecoder({
        frame: (f) => {
          if (f.type !== FrameType.Boot) return;
          const r = bl.handle(f.op, f.body);
          const answer = (): void => cb?.(encodeFrame({ type: FrameType.BootResp, flags: 0, seq: f.seq, op: r.op, status: r.status, body: r.body }));
          setTimeout(answer, f.op === BootOp.Write ? delayFor(++writes) : 1);
        },
        line: () => {},
        drop: () => {},
      }, "binary");
      return Promise.resolve({
        path,
        closed,
        onData: (c: (b: Buffer) => void) => void (cb = c),
        write: (d: Uint8Array | string) => (dec.push(Buffer.from(d)), Promise.resolve()),
        close: () => Promise.resolve(),
      });
    },
  };
}

test("bootloader answers are matched by seq: a late answer to a resent WRITE is not taken for the next WRITE's", async () => {
  // WRITE #1's answer comes after the 400 ms timeout, so it is resent (#2); both answers arrive, the
  // second while WRITE@512 is in flight. Matched by op alone, that stale "expect 512" made the flasher
  // send 512 again (an extra WRITE per resend).
  const dev = slowDevice((n) => (n === 1 ? 600 : 300));
  const port = new BootPort(dev, "/dev/fake-boot", 115200);
  const signal = AbortSignal.timeout(20_000);
  await port.connect(signal);
  const img = Buffer.alloc(1536, 9);
  const sha = createHash("sha256").update(img).digest("hex");
  assert.equal(BootCodec.parseOffset((await port.request(BootOp.Begin, BootCodec.begin(sha, img.length, "2.0.0"), signal)).body), 0);
  let offset = 0;
  const seen: number[] = [];
  while (offset < img.length) {
    const r = await port.request(BootOp.Write, BootCodec.write(offset, img.subarray(offset, offset + 512)), signal);
    assert.ok(r.status === BootStatus.Ok || r.status === BootStatus.NakOffset);
    offset = BootCodec.parseOffset(r.body);
    seen.push(offset);
  }
  assert.deepEqual(seen, [512, 1024, 1536], "each WRITE got its own answer");
  assert.equal(dev.bl.writes, 4, "three chunks and the one resend, no extra WRITE");
  assert.equal(dev.bl.duplicateWrites, 1);
  const fin = await port.request(BootOp.Finish, new Uint8Array(), signal);
  assert.equal(fin.status, BootStatus.Ok);
  assert.equal(BootCodec.parseHash(fin.body), sha);
  await port.close();
});
