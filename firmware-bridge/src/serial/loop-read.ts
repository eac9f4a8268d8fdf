import { readSync } from "node:fs";
import { LinkError } from "../errors.js";

/**
 * The part of serialport's native port (`LinuxPortBinding`, `DarwinPortBinding`) that reading needs:
 * its non-blocking fd (null once closed) and the uv_poll on it.
 */
export interface PolledPort {
  readonly fd: number | null;
  readonly poller: { once(event: "readable", cb: (err: Error | null) => void): unknown };
}

export function isPolledPort(binding: unknown): binding is PolledPort {
  return typeof binding === "object" && binding !== null && "poller" in binding && "fd" in binding && typeof binding.fd === "number";
}

/** Room a read gets at least; below it the next read starts a fresh slab. */
const MIN_READ = 1024;
const SLAB_BYTES = 64 * 1024;

/**
 * Reads an open port on the event-loop thread. serialport's own read path waits on the port's uv_poll
 * and then reads with `fs.read`, which runs on libuv's thread pool: every wake-up costs a hop to a pool
 * thread and back, and a second one for the EAGAIN that ends each burst. Here the same poller wakes us
 * and `readSync` on the non-blocking fd takes what the tty holds without waiting. serialport keeps the
 * fd: it opened it (termios, lock) and closes it, and its close cancels the wait (a `canceled` error).
 *
 * With `gapMs`, a read follows the previous one no sooner than that: what arrives meanwhile waits in the
 * tty's buffer and comes in one read. A port that is quiet is read as soon as a byte arrives.
 *
 * A read of 0 bytes is a hangup (the pty's other end closed; in raw mode with VMIN 1 an idle port
 * answers EAGAIN, never 0); it and any read error end the port through `gone`. Chunks are views into a
 * slab that is never written twice, so a consumer may keep one.
 */
export function readOnLoop(path: string, port: PolledPort, onData: (chunk: Buffer) => void, gone: (err: Error) => void, gapMs = 0): void {
  let slab = Buffer.allocUnsafe(SLAB_BYTES);
  let used = 0;
  const wait = (): void => void port.poller.once("readable", onReadable);
  function onReadable(err: Error | null): void {
    if (err) {
      if (!(err as { canceled?: boolean }).canceled) gone(err);
      return;
    }
    const fd = port.fd;
    if (fd === null) return;
    if (slab.length - used < MIN_READ) {
      slab = Buffer.allocUnsafe(SLAB_BYTES);
      used = 0;
    }
    let n: number;
    try {
      n = readSync(fd, slab, used, slab.length - used, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK" || code === "EINTR") wait();
      else gone(e as Error);
      return;
    }
    if (n === 0) {
      gone(new LinkError(`${path} hung up`));
      return;
    }
    const chunk = slab.subarray(used, used + n);
    used += n;
    // Armed before the chunk is handed on: a consumer that closes the port meanwhile cancels this wait
    // (or, with a gap, leaves a null fd for the timer to find).
    if (gapMs > 0) setTimeout(() => port.fd !== null && wait(), gapMs);
    else wait();
    onData(chunk);
  }
  wait();
}
