import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SerialDecoder } from "../serial/decoder.js";
import { encodeFrame, FrameType } from "../serial/frame.js";
import type { SerialConnection, SerialIo } from "../serial/io.js";
import { SimBootloader } from "../sim/bootloader.js";
import { BootPort } from "./boot-port.js";
import { BootCodec, BootOp, BootStatus } from "./canopy-protocol.js";
import { CanopyBootloaderFlasher } from "./canopy-bootloader.js";

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

/**
 * A device that replays the race seen once in a full run: its running boot's hello was lost while the
 * port reopened, and the resend (same nonce, old version) lands just after ACTIVATE, before the new
 * image's hello. `withNonce` false models an older bootloader whose INFO carries no nonce.
 */
function lateHelloDevice(withNonce: boolean): SerialIo {
  const oldBoot = 0x1234abcd;
  const newBoot = 0x0badf00d;
  let cb: ((b: Buffer) => void) | undefined;
  const out = (f: Parameters<typeof encodeFrame>[0]): void => cb?.(encodeFrame(f));
  let seq = 100;
  const hello = (firmware: string, boot: number): void => out({ type: FrameType.Hello, flags: 0, seq: ++seq, mcu: "m1", board: "rp2040", firmware, boot });
  const bl = new SimBootloader("1.0.0", {
    reboot: (version) => hello(version, newBoot),
    sendConfirm: (version) => out({ type: FrameType.BootResp, flags: 0, seq: 0, op: BootOp.Confirm, status: 0, body: BootCodec.version(version) }),
    report: () => {},
    ...(withNonce ? { bootNonce: () => oldBoot } : {}),
  }, "rp2040");
  return {
    open(path: string): Promise<SerialConnection> {
      const dec = new SerialDecoder({
        frame: (f) => {
          if (f.type !== FrameType.Boot) return;
          const r = bl.handle(f.op, f.body);
          if (f.op === BootOp.Confirm) return;
          out({ type: FrameType.BootResp, flags: 0, seq: f.seq, op: r.op, status: r.status, body: r.body });
          // The old boot's resent hello, never seen before ACTIVATE (the new boot follows 50 ms later).
          if (f.op === BootOp.Activate) hello("1.0.0", oldBoot);
        },
        line: () => {},
        drop: () => {},
      }, "binary");
      // An open port keeps the process alive, as a real fd does (the flasher's own timers are unref'd).
      const alive = setInterval(() => {}, 1_000);
      return Promise.resolve({
        path,
        closed: new Promise<undefined>(() => {}),
        onData: (c: (b: Buffer) => void) => void (cb = c),
        write: (d: Uint8Array | string) => (dec.push(Buffer.from(d)), Promise.resolve()),
        close: () => (clearInterval(alive), Promise.resolve()),
      });
    },
  } as SerialIo;
}

test("a hello of the running boot that arrives only after ACTIVATE is not the new boot: INFO's nonce tells them apart", async () => {
  const img = Buffer.alloc(2048, 7);
  const image = { data: img, format: "bin" as const, sha256: createHash("sha256").update(img).digest("hex"), version: "2.0.0", board: "rp2040" };
  const flash = (io: SerialIo) =>
    new CanopyBootloaderFlasher(io).flash({ port: "/dev/fake-boot", image, signal: AbortSignal.timeout(20_000), deadlineMs: 20_000, onProgress: () => {}, options: { confirmWithinMs: "3000" } });
  const r = await flash(lateHelloDevice(true));
  assert.equal(r.confirmed, true);
  assert.equal(r.bootedVersion, "2.0.0");
  // The limit that stays with a bootloader whose INFO has no nonce: the late hello reads as a revert.
  const old = await flash(lateHelloDevice(false));
  assert.deepEqual([old.confirmed, old.bootedVersion], [false, "1.0.0"]);
});
